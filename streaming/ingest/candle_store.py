"""Writing candles_1m from the ingest path: merge partials, recompute from ticks, upsert bars.

* ``merge``: a partial (first/last print times kept in ``first_ts``/``last_ts``) combines
  with the stored candle — open of the earlier first print, close of the later last print,
  max high, min low, summed volume and count, volume-weighted VWAP. A late print therefore
  extends a stored candle and never replaces it (reference §8.2 V11, fixed).
* ``recompute``: the minute rebuilt from the stored ticks (exact), used when a chunk of that
  minute contained prints the tick writer had already stored (a replay or reconnect overlap),
  where merging the partial would count them twice.
* ``upsert_bars``: bars of bar-only providers replace the stored candle of their minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from streaming.ingest.candles import NS, Candle

_MERGE = """
insert into candles_1m as c
    (symbol_id, ts, open, high, low, close, volume, trade_count, vwap,
     first_ts, last_ts, source, updated_at)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
on conflict (symbol_id, ts) do update set
    open = case when excluded.first_ts < coalesce(c.first_ts, c.ts + interval '1 minute')
                then excluded.open else c.open end,
    close = case when excluded.last_ts >= coalesce(c.last_ts, c.ts + interval '1 minute')
                 then excluded.close else c.close end,
    high = greatest(c.high, excluded.high),
    low = least(c.low, excluded.low),
    volume = c.volume + excluded.volume,
    trade_count = c.trade_count + excluded.trade_count,
    vwap = case when c.volume + excluded.volume > 0
                then (coalesce(c.vwap * c.volume, 0) + coalesce(excluded.vwap * excluded.volume, 0))
                     / (c.volume + excluded.volume)
                else coalesce(excluded.vwap, c.vwap) end,
    first_ts = least(c.first_ts, excluded.first_ts),
    last_ts = greatest(c.last_ts, excluded.last_ts),
    source = excluded.source,
    updated_at = now()
"""

# open/close by print time with the stored order (seq) breaking ties, as the builder does
_RECOMPUTE = """
insert into candles_1m as c
    (symbol_id, ts, open, high, low, close, volume, trade_count, vwap,
     first_ts, last_ts, source, updated_at)
select symbol_id, %(minute)s,
       (array_agg(price order by ts, seq))[1],
       max(price), min(price),
       (array_agg(price order by ts desc, seq desc))[1],
       sum(size), count(*)::int,
       case when sum(size) > 0 then sum(price * size) / sum(size) end,
       min(ts), max(ts), %(source)s, now()
from ticks
where symbol_id = %(sid)s and ts >= %(minute)s and ts < %(minute)s + interval '1 minute'
group by symbol_id
on conflict (symbol_id, ts) do update set
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = excluded.vwap,
    first_ts = excluded.first_ts, last_ts = excluded.last_ts, source = excluded.source,
    updated_at = now()
"""

_BAR = """
insert into candles_1m as c
    (symbol_id, ts, open, high, low, close, volume, trade_count, vwap, source, updated_at)
values (%s, %s, %s, %s, %s, %s, %s, %s, null, %s, now())
on conflict (symbol_id, ts) do update set
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = null,
    first_ts = null, last_ts = null, source = excluded.source, updated_at = now()
"""


def _dt(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns // NS, tz=UTC).replace(microsecond=(ts_ns % NS) // 1000)


def merge(conn: psycopg.Connection, candles: Sequence[Candle], source: str) -> int:
    if not candles:
        return 0
    params = [
        (
            c.symbol_id,
            _dt(c.minute_ns),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.trade_count,
            c.vwap,
            _dt(c.first_ts_ns),
            _dt(c.last_ts_ns),
            source,
        )
        for c in candles
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_MERGE, params)
    return len(params)


def recompute(conn: psycopg.Connection, keys: Iterable[tuple[int, int]], source: str) -> int:
    """Rebuild the (symbol_id, minute_ns) candles from stored ticks."""
    params = [{"sid": sid, "minute": _dt(m), "source": source} for sid, m in sorted(keys)]
    if not params:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_RECOMPUTE, params)
    return len(params)


def upsert_bars(
    conn: psycopg.Connection,
    bars: Sequence[tuple[int, int, float, float, float, float, float, int]],
    source: str,
) -> int:
    """Bars as (symbol_id, minute_ns, open, high, low, close, volume, trade_count)."""
    if not bars:
        return 0
    params = [(sid, _dt(m), o, h, lo, c, v, n, source) for sid, m, o, h, lo, c, v, n in bars]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_BAR, params)
    return len(params)
