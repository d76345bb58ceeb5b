"""The engine daemon (``marketflow engine``): market state, alerts, strategies, auto-trading.

``loop.Engine`` runs the 1-second loop; the other modules each carry one concern
(``queries`` reads, ``snapshot`` computes, ``state``/``alerts``/``strategies`` decide what to
write and publish, ``trader`` turns signals into broker orders).
"""
