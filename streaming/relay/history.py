"""What a freshly opened dashboard needs from PostgreSQL: symbols, recent candles, signals.

One short-lived connection per request (a dashboard asks a few times per page load), at most
``max_connections`` at once. Rows come back as JSON-ready dicts with ISO 8601 UTC times.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.contracts import Table
from storage.db import libpq_url

SYMBOLS_SQL = f"""
select s.symbol, s.name, s.market, s.timezone, s.asset_type,
       ms.state, ms.confidence, ms.poc, ms.ts as state_ts
from {Table.SYMBOLS} s
left join lateral (
    select m.state, m.confidence, m.poc, m.ts from {Table.MARKET_STATE} m
    where m.symbol_id = s.id order by m.ts desc limit 1
) ms on true
where s.active
order by s.symbol
"""

CANDLES_SQL = f"""
select c.ts, c.open, c.high, c.low, c.close, c.volume, c.trade_count, c.vwap
from {Table.CANDLES_1M} c
join {Table.SYMBOLS} s on s.id = c.symbol_id
where s.symbol = %(symbol)s
order by c.ts desc
limit %(limit)s
"""

SIGNALS_SQL = f"""
select g.ts, s.symbol, st.name as strategy, g.type, g.price, g.details
from {Table.SIGNALS} g
join {Table.SYMBOLS} s on s.id = g.symbol_id
left join {Table.STRATEGIES} st on st.id = g.strategy_id
order by g.ts desc
limit %(limit)s
"""

TIMEZONE_SQL = f"select timezone from {Table.SYMBOLS} where symbol = %(symbol)s"

MAX_CANDLES = 2000


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


class History:
    def __init__(self, database_url: str | None, max_connections: int = 4) -> None:
        self.database_url = database_url
        self._gate = asyncio.Semaphore(max_connections)

    async def _fetch(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.database_url:
            raise psycopg.OperationalError("no database configured")
        async with self._gate:
            conn = await psycopg.AsyncConnection.connect(
                libpq_url(self.database_url), connect_timeout=5, row_factory=dict_row
            )
            try:
                cur = await conn.execute(query, params)
                return [_jsonable(row) for row in await cur.fetchall()]
            finally:
                await conn.close()

    async def symbols(self) -> list[dict[str, Any]]:
        return await self._fetch(SYMBOLS_SQL, {})

    async def candles(self, symbol: str, limit: int = 390) -> dict[str, Any]:
        """The last ``limit`` one-minute candles of ``symbol``, oldest first."""
        limit = max(1, min(limit, MAX_CANDLES))
        rows = await self._fetch(CANDLES_SQL, {"symbol": symbol, "limit": limit})
        tz = await self._fetch(TIMEZONE_SQL, {"symbol": symbol})
        rows.reverse()
        candles = [{"time": r.pop("ts"), **r} for r in rows]
        return {
            "symbol": symbol,
            "timezone": tz[0]["timezone"] if tz else None,
            "candles": candles,
        }

    async def signals(self, limit: int = 50) -> list[dict[str, Any]]:
        return await self._fetch(SIGNALS_SQL, {"limit": max(1, min(limit, 500))})
