"""The ingest path's candle writes, through the storage layer's one rule for each.

* ``merge``: builder parts (with the times of their first and last print) are merged into
  the stored minute (``storage.candles.merge_candles``): a late print widens it.
* ``recompute``: minutes rebuilt from the stored ticks (``storage.candles.rebuild_from_ticks``);
  used when a chunk held prints the tick writer had stored before (replay, reconnect
  overlap), where merging would count them twice.
* ``upsert_bars``: bars of bar-only providers replace their minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from core.candles import Candle
from storage.candles import merge_candles, rebuild_from_ticks, replace_candles

BarRow = tuple[int, int, float, float, float, float, float, int]

_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


def merge(conn: psycopg.Connection, candles: Sequence[Candle], source: str) -> int:
    return merge_candles(conn, candles, source) if candles else 0


def recompute(conn: psycopg.Connection, keys: Iterable[tuple[int, int]], source: str) -> int:
    """Rebuild the (symbol_id, minute_ns) candles from stored ticks."""
    return rebuild_from_ticks(conn, *_ALL_TIME, source=source, keys=keys)


def upsert_bars(conn: psycopg.Connection, bars: Sequence[BarRow], source: str) -> int:
    """Bars as (symbol_id, minute_ns, open, high, low, close, volume, trade_count)."""
    whole = [Candle(sid, m, o, h, lo, c, v, n) for sid, m, o, h, lo, c, v, n in bars]
    return replace_candles(conn, whole, source) if whole else 0


# the plausibility band's seeds: each symbol's last stored close of the past week
LAST_CLOSES_SQL = """
select s.symbol, c.close from symbols s
cross join lateral (
    select close from candles_1m
    where symbol_id = s.id and ts > now() - interval '7 days' and close > 0
    order by ts desc limit 1
) as c
"""


def last_closes(conn: psycopg.Connection) -> dict[str, float]:
    """Symbol → its last stored close within a week (symbols without one are absent)."""
    with conn.cursor() as cur:
        cur.execute(LAST_CLOSES_SQL)
        return {str(sym): float(close) for sym, close in cur.fetchall()}
