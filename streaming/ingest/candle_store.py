"""The ingest path's candle writes, through the storage layer's one merge/replace rule.

* ``merge``: builder partials (with the times of their first and last print) go to
  ``storage.candles.merge_candles`` — a late print widens the stored candle, never
  replaces it (reference §8.2 V11, fixed).
* ``recompute``: minutes rebuilt from the stored ticks and written with
  ``storage.candles.replace_candles``; used when a chunk held prints the tick writer had
  stored before (replay, reconnect overlap), where merging would count them twice.
* ``upsert_bars``: bars of bar-only providers replace their minute (``replace_candles``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from storage.candles import Candle as StoredCandle
from storage.candles import merge_candles, replace_candles
from streaming.ingest.candles import NS, Candle

BarRow = tuple[int, int, float, float, float, float, float, int]

# every key's minute aggregated from ticks in one statement; open/close by print time with
# the ingest sequence breaking ties, as the builder's stable sort does
_FROM_TICKS = """
select t.symbol_id, k.minute,
       (array_agg(t.price order by t.ts, t.seq))[1],
       max(t.price), min(t.price),
       (array_agg(t.price order by t.ts desc, t.seq desc))[1],
       sum(t.size), count(*)::int,
       case when sum(t.size) > 0 then sum(t.price * t.size) / sum(t.size) end,
       min(t.ts), max(t.ts)
from unnest(%s::bigint[], %s::timestamptz[]) as k(symbol_id, minute)
join ticks t on t.symbol_id = k.symbol_id
    and t.ts >= k.minute and t.ts < k.minute + interval '1 minute'
group by t.symbol_id, k.minute
"""


def _dt(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns // NS, tz=UTC).replace(microsecond=(ts_ns % NS) // 1000)


def to_stored(c: Candle) -> StoredCandle:
    return StoredCandle(
        c.symbol_id, _dt(c.minute_ns), c.open, c.high, c.low, c.close, c.volume,
        c.trade_count, c.vwap, _dt(c.first_ts_ns), _dt(c.last_ts_ns),
    )  # fmt: skip


def merge(conn: psycopg.Connection, candles: Sequence[Candle], source: str) -> int:
    return merge_candles(conn, [to_stored(c) for c in candles], source) if candles else 0


def recompute(conn: psycopg.Connection, keys: Iterable[tuple[int, int]], source: str) -> int:
    """Rebuild the (symbol_id, minute_ns) candles from stored ticks."""
    ordered = sorted(set(keys))
    if not ordered:
        return 0
    with conn.cursor() as cur:
        cur.execute(_FROM_TICKS, ([k[0] for k in ordered], [_dt(k[1]) for k in ordered]))
        rebuilt = [StoredCandle(*row) for row in cur.fetchall()]
    return replace_candles(conn, rebuilt, source)


def upsert_bars(conn: psycopg.Connection, bars: Sequence[BarRow], source: str) -> int:
    """Bars as (symbol_id, minute_ns, open, high, low, close, volume, trade_count)."""
    stored = [StoredCandle(sid, _dt(m), o, h, lo, c, v, n) for sid, m, o, h, lo, c, v, n in bars]
    return replace_candles(conn, stored, source) if stored else 0
