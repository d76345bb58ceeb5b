"""Market data for the pages: symbols, watchlist, candles per timeframe, order flow, the
session profile, signals and market states.

Timeframes are aggregated in SQL in the symbol's own time zone (``date_bin`` over local wall
time), so a 1d bar is a market day and a 1h bar starts on the market's hour. Every bar has
``time`` (its start, ISO 8601 UTC) and ``t`` (its start as market-local wall-clock seconds,
what the chart's time axis shows).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from core.contracts import Table
from streaming.web.queries.base import Database

TIMEFRAMES: dict[str, str] = {
    "1m": "1 minute",
    "5m": "5 minutes",
    "15m": "15 minutes",
    "30m": "30 minutes",
    "1h": "1 hour",
    "1d": "1 day",
}
MAX_BARS = 2000
BIN_ORIGIN = "2000-01-03 00:00"  # a Monday, local midnight: bins start on the hour / day

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

SYMBOL_SQL = (
    f"select id, symbol, name, timezone, market, row_size from {Table.SYMBOLS}"
    " where symbol = %(symbol)s"
)

# the window scanned: enough 1-minute rows for ``limit`` bars across nights and weekends
_WINDOW = "greatest(%(step)s::interval * %(limit)s * 3, interval '5 days')"

CANDLES_SQL = f"""
with last as (select max(ts) as ts from {Table.CANDLES_1M} where symbol_id = %(sid)s),
bars as (
    select date_bin(%(step)s::interval, c.ts at time zone %(tz)s, timestamp '{BIN_ORIGIN}')
               as local,
           c.ts, c.open, c.high, c.low, c.close, c.volume, c.trade_count, c.vwap
    from {Table.CANDLES_1M} c, last
    where c.symbol_id = %(sid)s and c.ts > last.ts - {_WINDOW}
)
select local at time zone %(tz)s as time,
       extract(epoch from local)::bigint as t,
       (array_agg(open order by ts))[1] as open, max(high) as high, min(low) as low,
       (array_agg(close order by ts desc))[1] as close, sum(volume) as volume,
       sum(trade_count)::integer as trade_count,
       sum(vwap * volume) / nullif(sum(volume), 0) as vwap
from bars group by local order by local desc limit %(limit)s
"""

FLOW_SQL = f"""
with last as (select max(bucket) as ts from {Table.ORDER_FLOW} where symbol_id = %(sid)s),
rows as (
    select date_bin(%(step)s::interval, f.bucket at time zone %(tz)s, timestamp '{BIN_ORIGIN}')
               as local,
           f.bucket, f.delta, f.cvd, f.buy_volume, f.sell_volume
    from {Table.ORDER_FLOW} f, last
    where f.symbol_id = %(sid)s and f.bucket > last.ts - {_WINDOW}
),
-- a session's minutes are zero-filled from its start (a 24/7 market's midnight): the
-- minutes before the first trade of their local day are no bars, so they do not stretch
-- the chart's time scale past the candles
traded as (
    select *, bool_or(coalesce(buy_volume, 0) + coalesce(sell_volume, 0) > 0)
                  over (partition by (bucket at time zone %(tz)s)::date order by bucket)
                  as begun
    from rows
)
select local at time zone %(tz)s as time, extract(epoch from local)::bigint as t,
       sum(delta) as delta, (array_agg(cvd order by bucket desc))[1] as cvd,
       sum(buy_volume) as buy_volume, sum(sell_volume) as sell_volume
from traded where begun group by local order by local desc limit %(limit)s
"""

SESSION_SQL = f"""
select session_date, bucket, poc, vah, val, total_volume, lvns, hvns, ib_high, ib_low
from {Table.PROFILE_METRICS}
where symbol_id = %(sid)s and horizon = 'session'
order by bucket desc limit 1
"""

# a session's profile: its minutes' cells summed per price level (sessions are UTC days,
# as the profile assets define them)
LEVELS_SQL = f"""
select price_level::float8 as price, sum(buy_volume) as buy, sum(sell_volume) as sell,
       sum(total_volume) as total
from {Table.VOLUME_PROFILE}
where symbol_id = %(sid)s
  and bucket >= %(day)s::date::timestamp at time zone 'UTC'
  and bucket < (%(day)s::date + 1)::timestamp at time zone 'UTC'
group by price_level order by price_level
"""

# naked POCs of the sessions before the shown one (``day``, null before the first profile
# run): the table also holds the developing session's POC, a candidate until its session ends
NAKED_SQL = """
select session_date, poc from naked_pocs
where symbol_id = %(sid)s and touched_at is null
  and (%(day)s::date is null or session_date < %(day)s::date)
order by session_date desc limit 10
"""

SIGNALS_SQL = f"""
select g.ts, s.symbol, st.name as strategy, g.type, g.price, g.details
from {Table.SIGNALS} g
join {Table.SYMBOLS} s on s.id = g.symbol_id
left join {Table.STRATEGIES} st on st.id = g.strategy_id
where (%(symbol)s::text is null or s.symbol = %(symbol)s)
  and (%(strategy)s::text is null or st.name = %(strategy)s)
order by g.ts desc
limit %(limit)s
"""

STATES_SQL = f"""
select m.ts, m.state, m.confidence, m.poc, m.balance_high, m.balance_low, m.details
from {Table.MARKET_STATE} m
where m.symbol_id = %(sid)s
order by m.ts desc limit %(limit)s
"""

WATCHLIST_MART_SQL = """
select s.name, s.timezone, w.*
from {mart} w join symbols s on s.id = w.symbol_id
order by w.symbol
"""

WATCHLIST_RAW_SQL = f"""
select s.symbol, s.name, s.asset_type, s.market, s.timezone,
       c.close as last_price, c.ts as last_price_at, pc.close as previous_close,
       c.close - pc.close as price_change,
       case when pc.close > 0 then (c.close - pc.close) / pc.close * 100 end
           as price_change_pct,
       ms.state as market_state, ms.confidence as state_confidence, ms.ts as state_at,
       f.buy_pressure, f.sell_pressure, f.cvd as session_cvd, f.bucket as flow_at,
       pm.session_date, pm.bucket as profile_at, pm.poc as session_poc,
       pm.vah as session_vah, pm.val as session_val,
       (select (n ->> 'price')::float8
        from jsonb_array_elements(
            case when jsonb_typeof(pm.lvns) = 'array' then pm.lvns else '[]'::jsonb end) n
        order by abs((n ->> 'price')::float8 - c.close) limit 1) as nearest_lvn,
       sg.ts as last_signal_at, sg.type as last_signal_type,
       sg.strategy as last_signal_strategy, sg.price as last_signal_price
from {Table.SYMBOLS} s
left join lateral (select ts, close from {Table.CANDLES_1M}
                   where symbol_id = s.id order by ts desc limit 1) c on true
left join lateral (select close from {Table.CANDLES_1M}
                   where symbol_id = s.id
                     and ts < (c.ts at time zone 'UTC')::date::timestamp at time zone 'UTC'
                   order by ts desc limit 1) pc on true
left join lateral (select state, confidence, ts from {Table.MARKET_STATE}
                   where symbol_id = s.id order by ts desc limit 1) ms on true
left join lateral (select buy_pressure, sell_pressure, cvd, bucket from {Table.ORDER_FLOW}
                   where symbol_id = s.id order by bucket desc limit 1) f on true
left join lateral (select session_date, bucket, poc, vah, val, lvns
                   from {Table.PROFILE_METRICS}
                   where symbol_id = s.id and horizon = 'session'
                   order by bucket desc limit 1) pm on true
left join lateral (select g.ts, g.type, g.price, st.name as strategy
                   from {Table.SIGNALS} g
                   left join {Table.STRATEGIES} st on st.id = g.strategy_id
                   where g.symbol_id = s.id order by g.ts desc limit 1) sg on true
where s.active
order by s.symbol
"""


class UnknownSymbol(LookupError):
    pass


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


class MarketQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def symbol(self, symbol: str) -> dict[str, Any]:
        row = await self.db.fetch_one(SYMBOL_SQL, {"symbol": symbol})
        if row is None:
            raise UnknownSymbol(symbol)
        return row

    async def symbols(self) -> list[dict[str, Any]]:
        return await self.db.fetch(SYMBOLS_SQL)

    async def watchlist(self) -> dict[str, Any]:
        mart = await self.db.mart("watchlist_latest")
        if mart is not None:
            rows = await self.db.fetch(sql.SQL(WATCHLIST_MART_SQL).format(mart=mart))
            for row in rows:
                row.pop("symbol_id", None)
            return {"source": "watchlist_latest", "rows": rows}
        return {"source": "raw", "rows": await self.db.fetch(WATCHLIST_RAW_SQL)}

    async def _bars(
        self, query: str, symbol: str, limit: int, timeframe: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        sym = await self.symbol(symbol)
        params = {
            "sid": sym["id"],
            "tz": sym["timezone"],
            "step": TIMEFRAMES[timeframe],
            "limit": clamp(limit, 1, MAX_BARS),
        }
        rows = await self.db.fetch(query, params)
        rows.reverse()
        return sym, rows

    async def candles(self, symbol: str, limit: int = 390, timeframe: str = "1m") -> dict[str, Any]:
        """The last ``limit`` bars of ``symbol`` at ``timeframe``, oldest first."""
        sym, rows = await self._bars(CANDLES_SQL, symbol, limit, timeframe)
        return {
            "symbol": symbol,
            "timezone": sym["timezone"],
            "timeframe": timeframe,
            "candles": rows,
        }

    async def flow(self, symbol: str, limit: int = 390, timeframe: str = "1m") -> dict[str, Any]:
        """Delta per bar and the session CVD at each bar's end, oldest first."""
        sym, rows = await self._bars(FLOW_SQL, symbol, limit, timeframe)
        return {"symbol": symbol, "timezone": sym["timezone"], "timeframe": timeframe, "flow": rows}

    async def profile(self, symbol: str) -> dict[str, Any]:
        """The latest session profile: POC/VAH/VAL, LVNs/HVNs, the buy/sell volume per price
        level, and the naked POCs of earlier sessions."""
        sym = await self.symbol(symbol)
        session = await self.db.fetch_one(SESSION_SQL, {"sid": sym["id"]})
        levels: list[dict[str, Any]] = []
        if session is not None:
            levels = await self.db.fetch(
                LEVELS_SQL, {"sid": sym["id"], "day": session["session_date"]}
            )
        day = session["session_date"] if session is not None else None
        naked = await self.db.fetch(NAKED_SQL, {"sid": sym["id"], "day": day})
        return {"symbol": symbol, "session": session, "levels": levels, "naked_pocs": naked}

    async def signals(
        self, limit: int = 50, symbol: str | None = None, strategy: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"limit": clamp(limit, 1, 500), "symbol": symbol, "strategy": strategy}
        return await self.db.fetch(SIGNALS_SQL, params)

    async def states(self, symbol: str, limit: int = 50) -> list[dict[str, Any]]:
        sym = await self.symbol(symbol)
        return await self.db.fetch(STATES_SQL, {"sid": sym["id"], "limit": clamp(limit, 1, 500)})
