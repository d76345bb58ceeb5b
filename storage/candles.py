"""1-minute candle upserts: ``merge_candles`` for stream increments, ``replace_candles`` for
reconciled bars.

Merge semantics (one rule, written twice: ``combine`` in Python for increments that meet
inside one batch, and the ``ON CONFLICT`` clause for increments that meet a stored bar;
``tests/test_candles_store.py`` checks the two agree):

* high = max, low = min, volume and trade_count add, vwap is the volume-weighted mean;
* open is the open of the part whose first print is earliest (``first_ts``), close the close
  of the part whose last print is latest (``last_ts``; a tie goes to the newer increment).

So a late trade that arrives after its minute was stored widens the bar instead of replacing
it (the original overwrote the full bar with the late partial one, reference §2.5). Merging
is not idempotent: the stream must hand each print to exactly one increment; reconciliation
from stored ticks (``replace_candles``) repairs a bar whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd
import psycopg

_MINUTE_END = timedelta(minutes=1) - timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Candle:
    symbol_id: int
    ts: datetime  # minute start, UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int = 0
    vwap: float | None = None
    first_ts: datetime | None = None  # time of the first print in this candle (or increment)
    last_ts: datetime | None = None  # time of the last print


def with_times(c: Candle) -> Candle:
    """A bar without print times (a provider's bar) is taken to span its whole minute."""
    if c.first_ts is not None and c.last_ts is not None:
        return c
    return replace(
        c,
        first_ts=c.first_ts if c.first_ts is not None else c.ts,
        last_ts=c.last_ts if c.last_ts is not None else c.ts + _MINUTE_END,
    )


def _merged_vwap(
    a_vwap: float | None, a_vol: float, b_vwap: float | None, b_vol: float
) -> float | None:
    if a_vol + b_vol <= 0:
        return b_vwap if b_vwap is not None else a_vwap
    if (a_vol > 0 and a_vwap is None) or (b_vol > 0 and b_vwap is None):
        return None  # part of the volume has no known average price
    return ((a_vwap or 0.0) * a_vol + (b_vwap or 0.0) * b_vol) / (a_vol + b_vol)


def combine(stored: Candle, new: Candle) -> Candle:
    """Merge increment ``new`` into ``stored`` (same symbol and minute); see module doc."""
    a, b = with_times(stored), with_times(new)
    assert a.first_ts and a.last_ts and b.first_ts and b.last_ts
    return Candle(
        symbol_id=a.symbol_id,
        ts=a.ts,
        open=b.open if b.first_ts < a.first_ts else a.open,
        high=max(a.high, b.high),
        low=min(a.low, b.low),
        close=b.close if b.last_ts >= a.last_ts else a.close,
        volume=a.volume + b.volume,
        trade_count=a.trade_count + b.trade_count,
        vwap=_merged_vwap(a.vwap, a.volume, b.vwap, b.volume),
        first_ts=min(a.first_ts, b.first_ts),
        last_ts=max(a.last_ts, b.last_ts),
    )


def combine_batch(candles: Iterable[Candle]) -> list[Candle]:
    """One candle per (symbol_id, ts), increments combined in the order given."""
    out: dict[tuple[int, datetime], Candle] = {}
    for c in candles:
        key = (c.symbol_id, c.ts)
        prev = out.get(key)
        out[key] = with_times(c) if prev is None else combine(prev, c)
    return list(out.values())


def _plain(value: object) -> object:
    """A frame cell as a plain Python value: NaN/NaT → None, Timestamp → datetime."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return None if pd.isna(value) else value  # type: ignore[call-overload]


def candles_from_frame(frame: pd.DataFrame) -> list[Candle]:
    """Candles from a frame with ``Candle``'s column names (``trade_count``, ``vwap``,
    ``first_ts`` and ``last_ts`` may be missing)."""
    out = []
    for rec in frame.to_dict("records"):
        vwap = _plain(rec.get("vwap"))
        out.append(
            Candle(
                symbol_id=int(rec["symbol_id"]),
                ts=_plain(rec["ts"]),  # type: ignore[arg-type]
                open=float(rec["open"]),
                high=float(rec["high"]),
                low=float(rec["low"]),
                close=float(rec["close"]),
                volume=float(rec["volume"]),
                trade_count=int(_plain(rec.get("trade_count")) or 0),  # type: ignore[call-overload]
                vwap=None if vwap is None else float(vwap),  # type: ignore[arg-type]
                first_ts=_plain(rec.get("first_ts")),  # type: ignore[arg-type]
                last_ts=_plain(rec.get("last_ts")),  # type: ignore[arg-type]
            )
        )
    return out


_INSERT = """
insert into candles_1m as c
    (symbol_id, ts, open, high, low, close, volume, trade_count, vwap, first_ts, last_ts,
     source, updated_at)
select u.*, %s, now() from unnest(
    %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[], %s::float8[], %s::float8[],
    %s::float8[], %s::int[], %s::float8[], %s::timestamptz[], %s::timestamptz[]) as u
on conflict (symbol_id, ts) do update set
"""

_MERGE = (
    _INSERT
    + """
    open = case when excluded.first_ts < coalesce(c.first_ts, c.ts)
                then excluded.open else c.open end,
    close = case when excluded.last_ts >= coalesce(c.last_ts, c.ts + interval '59.999999 s')
                 then excluded.close else c.close end,
    high = greatest(c.high, excluded.high),
    low = least(c.low, excluded.low),
    volume = c.volume + excluded.volume,
    trade_count = c.trade_count + excluded.trade_count,
    vwap = case
        when c.volume + excluded.volume <= 0 then coalesce(excluded.vwap, c.vwap)
        when (c.volume > 0 and c.vwap is null)
          or (excluded.volume > 0 and excluded.vwap is null) then null
        else (coalesce(c.vwap, 0) * c.volume + coalesce(excluded.vwap, 0) * excluded.volume)
             / (c.volume + excluded.volume) end,
    first_ts = least(coalesce(c.first_ts, c.ts), excluded.first_ts),
    last_ts = greatest(coalesce(c.last_ts, c.ts + interval '59.999999 s'), excluded.last_ts),
    source = excluded.source,
    updated_at = now()
"""
)

_REPLACE = (
    _INSERT
    + """
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = excluded.vwap,
    first_ts = excluded.first_ts, last_ts = excluded.last_ts, source = excluded.source,
    updated_at = now()
"""
)


def _params(source: str, candles: Sequence[Candle]) -> list[object]:
    cols: list[list[object]] = [[] for _ in range(11)]
    for c in candles:
        for i, v in enumerate(
            (
                c.symbol_id,
                c.ts,
                c.open,
                c.high,
                c.low,
                c.close,
                c.volume,
                c.trade_count,
                c.vwap,
                c.first_ts,
                c.last_ts,
            )
        ):
            cols[i].append(v)
    return [source, *cols]


def _upsert(conn: psycopg.Connection, sql: str, source: str, candles: Sequence[Candle]) -> int:
    if not candles:
        return 0
    # one statement for the whole batch (arrays + unnest): no round trip per candle
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql, _params(source, candles))
        return cur.rowcount


def merge_candles(
    conn: psycopg.Connection, candles: Iterable[Candle] | pd.DataFrame, source: str = "stream"
) -> int:
    """Merge stream increments into stored bars (see module doc). Returns rows touched."""
    items = candles_from_frame(candles) if isinstance(candles, pd.DataFrame) else candles
    return _upsert(conn, _MERGE, source, combine_batch(items))


def replace_candles(
    conn: psycopg.Connection,
    candles: Iterable[Candle] | pd.DataFrame,
    source: str = "reconciled",
) -> int:
    """Store complete bars (reconciled from ticks, or a provider's final bars), replacing
    whatever is stored for those minutes. A bar given twice: the last one wins."""
    items = candles_from_frame(candles) if isinstance(candles, pd.DataFrame) else candles
    latest = {(c.symbol_id, c.ts): with_times(c) for c in items}
    return _upsert(conn, _REPLACE, source, list(latest.values()))
