"""Alpaca: the market-data stream (``stream``, its wire ``protocol``, REST ``gap_fill`` after
an outage, ``nyse_hours``) and the trading API the engine's orders go through
(``execution``), side by side."""
