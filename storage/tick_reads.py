"""The one way ticks are read back: for the profile assets, their incremental resume and
the profile CLI.

Ticks come back as numpy columns: the server packs each column into one byte string in its
binary send format (``string_agg(float8send(price), ...)``) and ``np.frombuffer`` reads it,
so no Python code runs per tick. Prints are ordered by (ts, seq): the ingest sequence breaks
ties between prints of the same instant, so the tick rule sees them in arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 (PostgreSQL's epoch) in Unix microseconds

# column → (SQL expression in PostgreSQL's binary send format, its big-endian numpy type)
_TICK_FIELDS: dict[str, tuple[str, str]] = {
    "symbol_id": ("int8send(t.symbol_id)", ">i8"),
    "ts": ("timestamptz_send(t.ts)", ">i8"),  # µs since 2000-01-01
    "price": ("float8send(t.price)", ">f8"),
    "size": ("float8send(t.size)", ">f8"),
    "side": ("int2send(coalesce(t.side, 0)::int2)", ">i2"),
    "bid": ("float8send(coalesce(t.bid, 'NaN'))", ">f8"),
    "ask": ("float8send(coalesce(t.ask, 'NaN'))", ">f8"),
    "seq": ("int8send(t.seq)", ">i8"),
}
# what a venue may leave out for a whole window: no byte is sent for such a column
_OPTIONAL = {"side": "t.side", "bid": "t.bid", "ask": "t.ask"}


def _aggregate(name: str, expr: str) -> str:
    agg = f"string_agg({expr}, ''::bytea order by t.symbol_id, t.ts, t.seq)"
    if name in _OPTIONAL:
        return f"case when count({_OPTIONAL[name]}) > 0 then {agg} end"
    return agg


_AGGS = ", ".join(_aggregate(name, expr) for name, (expr, _) in _TICK_FIELDS.items())


@dataclass(frozen=True)
class TickColumns:
    """Ticks as arrays in (symbol_id, ts, seq) order. ``ts`` is int64 ns since the Unix
    epoch (UTC); ``side`` is +1 buy, -1 sell, 0 unknown; ``bid``/``ask`` NaN when unknown."""

    symbol_id: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    seq: np.ndarray
    # the optional columns (side, bid, ask) with at least one known value
    known: frozenset[str] = frozenset(_OPTIONAL)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def frame(self) -> pd.DataFrame:
        """The same columns as a DataFrame, ``ts`` as ``datetime64[ns, UTC]``."""
        return pd.DataFrame(
            {
                "symbol_id": self.symbol_id,
                "ts": pd.to_datetime(self.ts, unit="ns", utc=True),
                "price": self.price,
                "size": self.size,
                "side": self.side,
                "bid": self.bid,
                "ask": self.ask,
                "seq": self.seq,
            }
        )

    def profile_frame(self) -> pd.DataFrame:
        """One symbol's prints as the profile computation takes them: ts, price, size, and
        side / bid / ask as floats, NaN where the venue gave none; a column the venue gave
        for no print at all is left out (the computation then never reads it)."""
        columns: dict[str, np.ndarray | pd.DatetimeIndex] = {
            "ts": pd.to_datetime(self.ts, unit="ns", utc=True),
            "price": self.price,
            "size": self.size,
        }
        if "side" in self.known:
            side = self.side.astype(np.float64)
            side[self.side == 0] = np.nan
            columns["side"] = side
        columns.update({name: getattr(self, name) for name in ("bid", "ask") if name in self.known})
        return pd.DataFrame(columns)


def _decode(row: Sequence[bytes | None]) -> TickColumns:
    cols: dict[str, np.ndarray] = {}
    for (name, (_, kind)), data in zip(_TICK_FIELDS.items(), row, strict=True):
        cols[name] = np.frombuffer(data or b"", dtype=kind).astype(kind.replace(">", "="))
    n = cols["ts"].shape[0]
    known = frozenset(name for name in _OPTIONAL if cols[name].shape[0] == n)
    for name in _OPTIONAL.keys() - known:  # none known: all unknown, as documented
        cols[name] = np.zeros(n) if name == "side" else np.full(n, np.nan)
    cols["ts"] = (cols["ts"] + _PG_EPOCH_US) * 1000
    cols["side"] = cols["side"].astype(np.int8)
    return TickColumns(**cols, known=known)


def tick_columns(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    symbol_ids: int | Sequence[int] | None = None,
) -> TickColumns:
    """Ticks with ``start <= ts < end`` for one symbol, several, or all (None), together."""
    where = "t.ts >= %s and t.ts < %s"
    params: list[object] = [start, end]
    if isinstance(symbol_ids, int):
        where += " and t.symbol_id = %s"
        params.append(symbol_ids)
    elif symbol_ids is not None:
        where += " and t.symbol_id = any(%s)"
        params.append(list(symbol_ids))
    # one row of byte strings, one per column: a per-row protocol message (COPY, fetch)
    # costs ~1.5 µs in Python, this ~nothing
    with conn.cursor(binary=True) as cur:
        cur.execute(f"select {_AGGS} from ticks as t where {where}", params)
        row = cur.fetchone()
    return _decode(row or (None,) * len(_TICK_FIELDS))


def ticks_by_symbol(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    since: Mapping[int, datetime] | None = None,
) -> dict[int, TickColumns]:
    """Ticks with ``start <= ts < end``, one row of columns per symbol (a server string stays
    a symbol's day, never the whole universe's). With ``since``, only those symbols, each
    from its own start on (an incremental run's resume minutes)."""
    join = ""
    params: list[object] = []
    if since is not None:
        if not since:
            return {}
        join = (
            " join unnest(%s::bigint[], %s::timestamptz[]) as r(symbol_id, since)"
            " on t.symbol_id = r.symbol_id and t.ts >= r.since"
        )
        params += [list(since), list(since.values())]
        start = max(start, min(since.values()))
    params += [start, end]
    with conn.cursor(binary=True) as cur:
        cur.execute(
            f"select {_AGGS} from ticks as t{join} where t.ts >= %s and t.ts < %s"
            " group by t.symbol_id",
            params,
        )
        decoded = [_decode(row) for row in cur.fetchall()]
    return {int(cols.symbol_id[0]): cols for cols in decoded if len(cols)}
