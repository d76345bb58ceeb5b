"""Every SQL statement the web server runs, by page: market data, the footprint,
trading/Polymarket and stored backtests.

``Queries`` bundles them over one ``Database`` (a few reused connections)."""

from __future__ import annotations

from streaming.web.queries.backtests import BacktestQueries
from streaming.web.queries.base import Database
from streaming.web.queries.footprint import FootprintQueries
from streaming.web.queries.market import TIMEFRAMES, UnknownSymbol
from streaming.web.queries.trading import NotFound, TradingQueries


class Queries(FootprintQueries, TradingQueries, BacktestQueries):
    def __init__(self, database_url: str | None, max_connections: int = 4) -> None:
        self.db = Database(database_url, max_connections)


__all__ = ["TIMEFRAMES", "Database", "NotFound", "Queries", "UnknownSymbol"]
