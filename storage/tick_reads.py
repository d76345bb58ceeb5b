"""The one way ticks are read back: for the profile assets, their incremental resume, the
backtest's prints and the profile CLI.

Ticks come back as numpy columns: the server packs each column into one byte string in its
binary send format (``string_agg(float8send(price), ...)``) and ``np.frombuffer`` reads it,
so no Python code runs per tick. Prints are ordered by (ts, seq): the ingest sequence breaks
ties between prints of the same instant, so the tick rule sees them in arrival order.

Days moved to the Parquet archive (docs/retention.md) are read from their file, merged with
any row PostgreSQL holds for them again (the archive's row wins a repeated key), so callers
get the same columns whether a day is archived or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa

from storage.tick_archive import ArchiveError, TickArchive, day_bounds, split_window, utc_day

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

    def take(self, rows: slice | np.ndarray) -> TickColumns:
        """The same columns for some rows (a slice or a boolean mask)."""
        return TickColumns(
            **{n: getattr(self, n)[rows] for n in _TICK_FIELDS},
            known=self.known,
        )

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


def _pg_columns(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    symbol_ids: int | Sequence[int] | None = None,
) -> TickColumns:
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


def _pg_by_symbol(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    since: Mapping[int, datetime] | None = None,
) -> dict[int, TickColumns]:
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


def tick_columns(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    symbol_ids: int | Sequence[int] | None = None,
    archive: TickArchive | None = None,
) -> TickColumns:
    """Ticks with ``start <= ts < end`` for one symbol, several, or all (None), together."""
    plan = WindowPlan.of(conn, start, end, archive)
    if not plan.archived:
        return _pg_columns(conn, start, end, symbol_ids)
    ids = [symbol_ids] if isinstance(symbol_ids, int) else symbol_ids
    parts = [_pg_columns(conn, lo, hi, symbol_ids) for lo, hi in plan.live]
    parts += [_archived_day(conn, plan.archive, day, start, end, ids) for day in plan.archived]
    return concat_columns(parts)


def ticks_by_symbol(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    since: Mapping[int, datetime] | None = None,
    archive: TickArchive | None = None,
) -> dict[int, TickColumns]:
    """Ticks with ``start <= ts < end``, one row of columns per symbol (a server string stays
    a symbol's day, never the whole universe's). With ``since``, only those symbols, each
    from its own start on (an incremental run's resume minutes)."""
    if since is not None:
        if not since:
            return {}
        start = max(start, min(since.values()))
    plan = WindowPlan.of(conn, start, end, archive)
    if not plan.archived:
        return _pg_by_symbol(conn, start, end, since)
    parts: dict[int, list[TickColumns]] = {}
    for lo, hi in plan.live:
        for sid, cols in _pg_by_symbol(conn, lo, hi, since).items():
            parts.setdefault(sid, []).append(cols)
    ids = list(since) if since is not None else None
    for day in plan.archived:
        day_cols = _archived_day(conn, plan.archive, day, start, end, ids)
        for sid, cols in split_by_symbol(day_cols).items():
            if since is not None:
                cols = cols.take(cols.ts >= pd.Timestamp(since[sid]).value)
            if len(cols):
                parts.setdefault(sid, []).append(cols)
    return {sid: concat_columns(cols) for sid, cols in sorted(parts.items())}


def max_seq(
    conn: psycopg.Connection, start: datetime, end: datetime, archive: TickArchive | None = None
) -> int:
    """The newest ingest sequence number among the window's ticks, archived days included
    (0 when none)."""
    row = conn.execute(
        "select coalesce(max(seq), 0) from ticks where ts >= %s and ts < %s", (start, end)
    ).fetchone()
    newest = int(row[0]) if row else 0
    plan = WindowPlan.of(conn, start, end, archive)
    for day in plan.archived:
        manifest = plan.archive.manifest(day)
        if manifest is not None and manifest.max_seq is not None:
            newest = max(newest, manifest.max_seq)
    return newest


@dataclass(frozen=True)
class WindowPlan:
    """Which days of a window come from the archive, and the spans PostgreSQL serves."""

    archive: TickArchive
    archived: list[date]
    live: list[tuple[datetime, datetime]]

    @classmethod
    def of(
        cls,
        conn: psycopg.Connection,
        start: datetime,
        end: datetime,
        archive: TickArchive | None = None,
    ) -> WindowPlan:
        archive = archive or TickArchive.configured()
        archived = archive.archived_in(start, end)
        if end > start:
            _check_recorded_days(conn, archive, start, end, archived)
        return cls(archive, archived, split_window(start, end, archived))


def _check_recorded_days(
    conn: psycopg.Connection,
    archive: TickArchive,
    start: datetime,
    end: datetime,
    found: list[date],
) -> None:
    """A day the database says it archived must be in the archive: else its ticks would read
    as an empty day and a profile run would overwrite good rows with nothing."""
    rows = conn.execute(
        "select day from tick_archive where day >= %s and day <= %s",
        (utc_day(start), utc_day(end - timedelta(microseconds=1))),
    ).fetchall()
    missing = sorted({r[0] for r in rows} - set(found))
    if missing:
        shown = ", ".join(d.isoformat() for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ArchiveError(
            f"ticks of {shown} were archived but are not under {archive.root}: restore the "
            "archive directory or set TICK_ARCHIVE_DIR to where it is (docs/retention.md)"
        )


_ARCHIVE_READ = ("symbol_id", "ts", "price", "size", "side", "bid", "ask", "seq")
_LATE_SQL = (
    "select symbol_id, ts, trade_id, price, size, side, bid, ask, seq from ticks "
    "where ts >= %s and ts < %s and (%s::bigint[] is null or symbol_id = any(%s::bigint[]))"
)


def _archived_day(
    conn: psycopg.Connection,
    archive: TickArchive,
    day: date,
    start: datetime,
    end: datetime,
    symbol_ids: Sequence[int] | None,
) -> TickColumns:
    """One archived day's ticks inside [start, end), merged with rows PostgreSQL holds for it
    again (a partition re-created by late prints, or not yet dropped)."""
    day_start, day_end = day_bounds(day)
    lo, hi = max(start, day_start), min(end, day_end)
    ids = None if symbol_ids is None else [int(s) for s in symbol_ids]
    late_rows = conn.execute(_LATE_SQL, (lo, hi, ids, ids)).fetchall()
    columns = (*_ARCHIVE_READ, "trade_id") if late_rows else _ARCHIVE_READ
    table = archive.read(day, columns, symbol_ids=ids, start=lo, end=hi)
    if late_rows:
        table = merge_late_rows(table, late_rows)
    return columns_from_arrow(table)


_KEY = ("symbol_id", "ts", "trade_id")


def merge_late_rows(archived: pa.Table, late_rows: Sequence[tuple]) -> pa.Table:
    """Archived rows plus the late rows whose key (symbol_id, ts, trade_id) the archive does
    not hold, in (symbol_id, ts, seq) order."""
    names = ("symbol_id", "ts", "trade_id", "price", "size", "side", "bid", "ask", "seq")
    types = [archived.schema.field(n).type for n in names]
    late = pa.table(
        [pa.array(col, type=t) for col, t in zip(zip(*late_rows, strict=True), types, strict=True)],
        names=list(names),
    )
    keys = archived.select(list(_KEY))
    new = late.join(keys, keys=list(_KEY), join_type="left anti")
    merged = pa.concat_tables([archived.select(list(names)), new.select(list(names))])
    return merged.sort_by([("symbol_id", "ascending"), ("ts", "ascending"), ("seq", "ascending")])


def columns_from_arrow(table: pa.Table) -> TickColumns:
    """Archive rows (in reader order) as the columns the PostgreSQL path returns."""

    def values(name: str, dtype: str, null: float | int) -> np.ndarray:
        column = table.column(name)
        return np.asarray(column.fill_null(null).to_numpy(), dtype=dtype)

    ts = table.column("ts").cast(pa.int64()).to_numpy().astype(np.int64) * 1000
    known = frozenset(n for n in _OPTIONAL if table.column(n).null_count < table.num_rows)
    return TickColumns(
        symbol_id=values("symbol_id", "int64", 0),
        ts=ts,
        price=values("price", "float64", np.nan),
        size=values("size", "float64", np.nan),
        side=values("side", "int8", 0),
        bid=values("bid", "float64", np.nan),
        ask=values("ask", "float64", np.nan),
        seq=values("seq", "int64", 0),
        known=known,
    )


def concat_columns(parts: Sequence[TickColumns]) -> TickColumns:
    """Several windows' columns as one, in (symbol_id, ts, seq) order."""
    parts = [p for p in parts if len(p)] or list(parts[:1])
    if not parts:
        return _decode((None,) * len(_TICK_FIELDS))
    if len(parts) == 1:
        return parts[0]
    names = ("symbol_id", "ts", "price", "size", "side", "bid", "ask", "seq")
    joined = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
    order = np.lexsort((joined["seq"], joined["ts"], joined["symbol_id"]))
    known = frozenset().union(*(p.known for p in parts))
    return TickColumns(**{n: v[order] for n, v in joined.items()}, known=known)


def split_by_symbol(cols: TickColumns) -> dict[int, TickColumns]:
    """Columns in symbol order cut into one TickColumns per symbol."""
    if not len(cols):
        return {}
    cuts = np.flatnonzero(np.diff(cols.symbol_id)) + 1
    bounds = zip(np.r_[0, cuts], np.r_[cuts, len(cols)], strict=True)
    return {int(cols.symbol_id[a]): cols.take(slice(a, b)) for a, b in bounds}
