"""Alpha Vantage: the intraday polling ``provider`` and the parsing of its answers (``parse``)."""
