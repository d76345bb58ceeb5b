"""Alpaca: the stock market-data stream (``data``), its wire messages (``parsing``), the REST
trades client that fills gaps after an outage (``rest``) and the trading API the engine's
orders go through (``execution``)."""
