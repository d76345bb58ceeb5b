"""``candles_1m`` writes: merge stream parts, replace whole bars, rebuild bars from ticks.

* ``merge_candles``: parts from the live stream meet the stored bar through the one merge
  rule, ``core.candle.Candle.merge`` (the stored rows are locked, merged in Python and
  written back in one transaction), so a late print widens its minute. Merging is not
  idempotent: the stream hands each print to exactly one part; ``rebuild_from_ticks``
  repairs a minute whatever happened.
* ``replace_candles``: whole bars (a provider's final bars) replace their minute.
* ``rebuild_from_ticks``: the one candles-from-ticks statement, for the Dagster
  reconciliation (a window, every symbol) and for ingest (minutes a replayed chunk touched).
  It writes only rows that differ, so a re-run touches nothing. Days in the tick archive
  are left out: PostgreSQL no longer holds their ticks (or only late ones), and their
  candles were rebuilt from every tick before the day was archived (docs/retention.md).
* ``rebuild_amended_minutes``: minutes whose prints a venue corrected or cancelled are
  rebuilt, and a minute left without any print loses its candle (docs/corrections.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import psycopg

from core.candle import Candle
from core.timestamps import MINUTE_NS, to_datetime
from storage.tick_archive import TickArchive, split_window

_COLUMNS = "symbol_id, ts, open, high, low, close, volume, trade_count, vwap, first_ts, last_ts"

_REPLACE = f"""
insert into candles_1m as c ({_COLUMNS}, source, updated_at)
select u.*, %s, now() from unnest(
    %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[], %s::float8[], %s::float8[],
    %s::float8[], %s::int[], %s::float8[], %s::timestamptz[], %s::timestamptz[]) as u
on conflict (symbol_id, ts) do update set
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = excluded.vwap,
    first_ts = excluded.first_ts, last_ts = excluded.last_ts, source = excluded.source,
    updated_at = now()
"""

_LOCK_STORED = f"""
select {_COLUMNS} from candles_1m
where (symbol_id, ts) in (select * from unnest(%s::bigint[], %s::timestamptz[]))
for update
"""

# Ticks are ordered by (ts, seq): the ingest order breaks ties between prints of the same
# instant, as the live builder saw them. Volume and VWAP compare with a relative tolerance
# (the live builder sums in another order). ``all_minutes`` false restricts the window to
# the given (symbol, minute) keys.
REBUILD_FROM_TICKS = f"""
with keys as (
    select * from unnest(%(symbol_ids)s::bigint[], %(minutes)s::timestamptz[])
        as k(symbol_id, minute)
),
agg as (
    select
        t.symbol_id,
        date_trunc('minute', t.ts) as minute,
        (array_agg(t.price order by t.ts, t.seq))[1] as open,
        max(t.price) as high,
        min(t.price) as low,
        (array_agg(t.price order by t.ts desc, t.seq desc))[1] as close,
        sum(t.size) as volume,
        count(*)::integer as trade_count,
        sum(t.price * t.size) / nullif(sum(t.size), 0) as vwap,
        min(t.ts) as first_ts,
        max(t.ts) as last_ts
    from ticks as t
    where t.ts >= %(start)s and t.ts < %(end)s
        and (%(all_minutes)s or exists (
            select 1 from keys as k
            where k.symbol_id = t.symbol_id and k.minute = date_trunc('minute', t.ts)))
    group by t.symbol_id, date_trunc('minute', t.ts)
)
insert into candles_1m as c ({_COLUMNS}, source, updated_at)
select symbol_id, minute, open, high, low, close, volume, trade_count, vwap, first_ts,
       last_ts, %(source)s, now()
from agg
on conflict (symbol_id, ts) do update set
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = excluded.vwap,
    first_ts = excluded.first_ts, last_ts = excluded.last_ts, source = excluded.source,
    updated_at = now()
where (c.open, c.high, c.low, c.close, c.trade_count)
        is distinct from (excluded.open, excluded.high, excluded.low, excluded.close,
                          excluded.trade_count)
    or abs(c.volume - excluded.volume) > 1e-9 * greatest(1.0, abs(excluded.volume))
    or (c.vwap is null) <> (excluded.vwap is null)
    or abs(c.vwap - excluded.vwap) > 1e-9 * greatest(1.0, abs(excluded.vwap))
"""


def fold(candles: Iterable[Candle]) -> list[Candle]:
    """One candle per (symbol_id, minute), parts merged in the order given."""
    out: dict[tuple[int, int], Candle] = {}
    for c in candles:
        key = (c.symbol_id, c.minute_ns)
        prev = out.get(key)
        out[key] = c if prev is None else prev.merge(c)
    return list(out.values())


def _params(source: str, candles: Sequence[Candle]) -> list[object]:
    cols: list[list[object]] = [[] for _ in range(11)]
    for c in candles:
        row = (
            c.symbol_id,
            c.ts,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.trade_count,
            c.vwap,
            to_datetime(c.first),
            to_datetime(c.last),
        )
        for i, v in enumerate(row):
            cols[i].append(v)
    return [source, *cols]


def _write(cur: psycopg.Cursor, source: str, candles: Sequence[Candle]) -> int:
    # one statement for the whole batch (arrays + unnest): no round trip per candle
    cur.execute(_REPLACE, _params(source, candles))
    return cur.rowcount


def merge_candles(
    conn: psycopg.Connection, candles: Iterable[Candle], source: str = "stream"
) -> int:
    """Merge stream parts into stored bars (see module doc). Returns rows written."""
    parts = fold(candles)
    if not parts:
        return 0
    keys = sorted((c.symbol_id, c.minute_ns) for c in parts)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_LOCK_STORED, ([k[0] for k in keys], [to_datetime(k[1]) for k in keys]))
        stored = {
            (c.symbol_id, c.minute_ns): c
            for c in (Candle.bar(r[0], r[1], r[2:7], *r[7:]) for r in cur.fetchall())
        }
        merged = [
            stored[k].merge(c) if (k := (c.symbol_id, c.minute_ns)) in stored else c for c in parts
        ]
        return _write(cur, source, merged)


def replace_candles(
    conn: psycopg.Connection, candles: Iterable[Candle], source: str = "reconciled"
) -> int:
    """Store whole bars, replacing whatever is stored for those minutes (the last given
    for a minute wins)."""
    latest = list({(c.symbol_id, c.minute_ns): c for c in candles}.values())
    if not latest:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        return _write(cur, source, latest)


def rebuild_from_ticks(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    source: str = "reconciled",
    keys: Iterable[tuple[int, int]] | None = None,
    archive: TickArchive | None = None,
) -> int:
    """Rebuild candles of [start, end) from stored ticks: every minute with ticks, or only
    the (symbol_id, minute_ns) ``keys``; archived days excluded. Returns the rows that
    changed."""
    chosen = sorted(set(keys)) if keys is not None else []
    if keys is not None:
        if not chosen:
            return 0
        minutes = [k[1] for k in chosen]
        start = max(start, to_datetime(min(minutes)))
        end = min(end, to_datetime(max(minutes) + MINUTE_NS))
    archived = (archive or TickArchive.configured()).archived_in(start, end)
    changed = 0
    with conn.transaction(), conn.cursor() as cur:
        for lo, hi in split_window(start, end, archived):
            params = {
                "symbol_ids": [k[0] for k in chosen],
                "minutes": [to_datetime(k[1]) for k in chosen],
                "start": lo,
                "end": hi,
                "all_minutes": keys is None,
                "source": source,
            }
            cur.execute(REBUILD_FROM_TICKS, params)
            changed += cur.rowcount
    return changed


BarRow = tuple[int, int, float, float, float, float, float, int]

_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


def rebuild_minutes(conn: psycopg.Connection, keys: Iterable[tuple[int, int]], source: str) -> int:
    """Rebuild the (symbol_id, minute_ns) candles from stored ticks, whenever they lie."""
    return rebuild_from_ticks(conn, *_ALL_TIME, source=source, keys=keys)


_DROP_EMPTY = """
delete from candles_1m as c
using unnest(%s::bigint[], %s::timestamptz[]) as k (symbol_id, minute)
where c.symbol_id = k.symbol_id and c.ts = k.minute
    and not exists (
        select 1 from ticks as t
        where t.symbol_id = k.symbol_id and t.ts >= k.minute
            and t.ts < k.minute + interval '1 minute')
"""


def rebuild_amended_minutes(
    conn: psycopg.Connection,
    keys: Iterable[tuple[int, int]],
    source: str,
    archive: TickArchive | None = None,
) -> int:
    """The (symbol_id, minute_ns) candles rebuilt from the amended tape; a minute whose only
    prints were cancelled has no candle any more (an archived day's minute is left alone:
    its other prints are in the archive, not in ``ticks``). Returns the rows changed or
    removed."""
    chosen = sorted(set(keys))
    if not chosen:
        return 0
    changed = rebuild_minutes(conn, chosen, source)
    minutes = [k[1] for k in chosen]
    span = (to_datetime(min(minutes)), to_datetime(max(minutes) + MINUTE_NS))
    archived = set((archive or TickArchive.configured()).archived_in(*span))
    chosen = [k for k in chosen if to_datetime(k[1]).date() not in archived]
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_DROP_EMPTY, ([k[0] for k in chosen], [to_datetime(k[1]) for k in chosen]))
        return changed + cur.rowcount


def replace_bars(conn: psycopg.Connection, bars: Sequence[BarRow], source: str) -> int:
    """A bar-only provider's bars, (symbol_id, minute_ns, open, high, low, close, volume,
    trade_count), replace their minutes."""
    whole = [Candle(sid, m, o, h, lo, c, v, n) for sid, m, o, h, lo, c, v, n in bars]
    return replace_candles(conn, whole, source) if whole else 0
