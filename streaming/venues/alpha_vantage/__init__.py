"""Alpha Vantage: the intraday polling client (``data``) and the parsing of its answers
and request budget (``parsing``)."""
