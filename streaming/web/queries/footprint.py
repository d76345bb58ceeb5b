"""The footprint chart's reads: per bar of a timeframe, the bar statistics from
``order_flow`` and the cells (buy and sell volume per price row) from ``volume_profile``,
with the stored imbalances of ``footprint_imbalances`` for 1-minute bars
(docs/dashboard.md, "The footprint chart").

Bars are the timeframes of the candles (``date_bin`` over the market's wall-clock time). A
bar exists where at least one of its minutes traded: the zero-filled minutes of a session
before its first print are no bars. Longer bars' cells and imbalances are put together in
``streaming/web/footprint.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.footprint_config import FootprintConfig
from core.contracts import Table
from streaming.web.footprint import footprint_bars
from streaming.web.queries.base import Database
from streaming.web.queries.market import BIN_ORIGIN, TIMEFRAMES, MarketQueries, clamp

MAX_FOOTPRINT_BARS = 500
FAR_PAST = datetime.fromisoformat("1900-01-01T00:00:00+00:00")
FAR_FUTURE = datetime.fromisoformat("9000-01-01T00:00:00+00:00")

# the newest ``limit`` bars in [from, to): statistics of the bar, the running delta within
# it as each minute's own extremes shifted by the delta of the bar's earlier minutes
BARS_SQL = f"""
with last as (
    select max(bucket) as ts from {Table.ORDER_FLOW}
    where symbol_id = %(sid)s and bucket >= %(from)s and bucket < %(to)s
      and coalesce(buy_volume, 0) + coalesce(sell_volume, 0) > 0
),
minutes as (
    select date_bin(%(step)s::interval, f.bucket at time zone %(tz)s, timestamp '{BIN_ORIGIN}')
               as local,
           f.bucket, coalesce(f.delta, 0) as delta, coalesce(f.trades, 0) as trades,
           f.max_delta, f.min_delta,
           coalesce(f.buy_volume, 0) + coalesce(f.sell_volume, 0) as volume
    from {Table.ORDER_FLOW} f, last
    where f.symbol_id = %(sid)s and f.bucket >= %(from)s and f.bucket < %(to)s
      and f.bucket > last.ts - greatest(%(step)s::interval * %(limit)s * 3, interval '5 days')
      and coalesce(f.buy_volume, 0) + coalesce(f.sell_volume, 0) > 0
),
shifted as (
    select *, coalesce(sum(delta) over (partition by local order by bucket
                       rows between unbounded preceding and 1 preceding), 0) as before
    from minutes
)
select local at time zone %(tz)s as time, extract(epoch from local)::bigint as t,
       sum(delta) as delta, sum(trades)::integer as trades,
       max(before + max_delta) as max_delta, min(before + min_delta) as min_delta,
       sum(volume) as volume
from shifted group by local order by local desc limit %(limit)s
"""

# the cells of those bars: buy/sell volume per (bar, price row); printed says whether a
# minute of the bar traded that row print by print (candle-fallback cells do not count)
CELLS_SQL = f"""
select extract(epoch from date_bin(%(step)s::interval, v.bucket at time zone %(tz)s,
                                   timestamp '{BIN_ORIGIN}'))::bigint as t,
       v.price_level::float8 as price, sum(v.buy_volume) as buy, sum(v.sell_volume) as sell,
       bool_or(v.trade_count > 0) as printed
from {Table.VOLUME_PROFILE} v
where v.symbol_id = %(sid)s and v.bucket >= %(first)s and v.bucket < %(end)s
group by 1, 2 order by 1, 2
"""

IMBALANCES_SQL = f"""
select extract(epoch from i.bucket at time zone %(tz)s)::bigint as t,
       i.price::float8 as price, i.side, i.stack_len
from {Table.FOOTPRINT_IMBALANCES} i
where i.symbol_id = %(sid)s and i.bucket >= %(first)s and i.bucket < %(end)s
"""

CONFIG_SQL = f"""
select imbalance_ratio, imbalance_min_volume from {Table.FOOTPRINT_CONFIG}
where symbol_id = %(sid)s
"""


# the session VWAP and sd at each bar's end (the last minute of the bar that has a row), of
# the bars starting at or after ``from`` (the page follows the market from its last bar)
VWAP_SQL = f"""
with last as (select max(bucket) as ts from {Table.SESSION_VWAP} where symbol_id = %(sid)s),
rows as (
    select date_bin(%(step)s::interval, w.bucket at time zone %(tz)s, timestamp '{BIN_ORIGIN}')
               as local,
           w.bucket, w.session_date, w.vwap, w.sd
    from {Table.SESSION_VWAP} w, last
    where w.symbol_id = %(sid)s and w.bucket >= %(from)s
      and w.bucket > last.ts - greatest(%(step)s::interval * %(limit)s * 3, interval '5 days')
)
select distinct on (local) local at time zone %(tz)s as time,
       extract(epoch from local)::bigint as t, session_date, vwap, sd
from rows order by local desc, bucket desc limit %(limit)s
"""


class FootprintQueries(MarketQueries):
    db: Database

    async def footprint(
        self,
        symbol: str,
        timeframe: str = "1m",
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 120,
    ) -> dict[str, Any]:
        """The newest ``limit`` bars of ``symbol`` at ``timeframe`` starting in
        [start, end), oldest first, each with its cells and statistics."""
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        sym = await self.symbol(symbol)
        row_size = float(sym.get("row_size") or 0.01)
        params: dict[str, Any] = {
            "sid": sym["id"],
            "tz": sym["timezone"],
            "step": TIMEFRAMES[timeframe],
            "limit": clamp(limit, 1, MAX_FOOTPRINT_BARS),
            "from": clamp_time(start, FAR_PAST),
            "to": clamp_time(end, FAR_FUTURE),
        }
        bars = await self.db.fetch(BARS_SQL, params)
        bars.reverse()
        cells: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        config = FootprintConfig()
        if bars:
            found = await self.db.fetch_one(CONFIG_SQL, {"sid": sym["id"]})
            config = FootprintConfig.from_row(found or {})
            window = {**params, "first": bars[0]["time"], "end": await self._bar_end(params, bars)}
            cells = await self.db.fetch(CELLS_SQL, window)
            if timeframe == "1m":
                stored = await self.db.fetch(IMBALANCES_SQL, window)
        return {
            "symbol": symbol,
            "timezone": sym["timezone"],
            "timeframe": timeframe,
            "row_size": row_size,
            "imbalance_ratio": config.imbalance_ratio,
            "bars": footprint_bars(bars, cells, stored, timeframe, row_size, config),
        }

    async def vwap(
        self,
        symbol: str,
        timeframe: str = "1m",
        limit: int = 390,
        start: datetime | None = None,
    ) -> dict[str, Any]:
        """The session VWAP and its sd at the end of each of the last ``limit`` bars (of
        those starting at or after ``start``)."""
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        sym = await self.symbol(symbol)
        params = {
            "sid": sym["id"],
            "tz": sym["timezone"],
            "step": TIMEFRAMES[timeframe],
            "limit": clamp(limit, 1, MAX_FOOTPRINT_BARS * 4),
            "from": clamp_time(start, FAR_PAST),
        }
        rows = await self.db.fetch(VWAP_SQL, params)
        rows.reverse()
        return {"symbol": symbol, "timezone": sym["timezone"], "timeframe": timeframe, "vwap": rows}

    async def _bar_end(self, params: dict[str, Any], bars: list[dict[str, Any]]) -> Any:
        """The instant the last bar ends (its local start plus the step, in the market's
        zone, so a 1d bar across a clock change ends at the next local midnight)."""
        query = (
            "select (to_timestamp(%(t)s) at time zone 'UTC' + %(step)s::interval)"
            " at time zone %(tz)s as end"
        )
        row = await self.db.fetch_one(query, {**params, "t": bars[-1]["t"]})
        assert row is not None
        return row["end"]


def clamp_time(value: datetime | None, default: datetime) -> datetime:
    """A bound the database can compare: none is ``default``; a naive time is UTC."""
    if value is None:
        return default
    if value.tzinfo is None:
        value = value.replace(tzinfo=FAR_PAST.tzinfo)
    return min(max(value, FAR_PAST), FAR_FUTURE)
