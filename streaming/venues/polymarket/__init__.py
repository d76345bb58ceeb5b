"""Polymarket: the CLOB market-channel WebSocket client (``data``) and the Gamma REST API for
market discovery (``rest``, its parsing in ``parsing``). The arbitrage flow built on them
(books, monitor, store) is ``streaming/polymarket/``."""
