"""Reads and writes of the profile assets: COPY in and out of PostgreSQL as DataFrames.

COPY + pandas parses a million ticks in about a second, where fetching rows through the
driver takes several; the writes use COPY too. Nothing here computes: the formulas live in
`analytics`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from analytics.footprint_config import FootprintConfig
from analytics.pipeline import (
    BIG_PRINT_COLUMNS,
    IMBALANCE_COLUMNS,
    ORDER_FLOW_COLUMNS,
    PROFILE_METRICS_COLUMNS,
    SESSION_VWAP_COLUMNS,
    VOLUME_PROFILE_COLUMNS,
)
from core.contracts import Table
from storage import tick_reads
from storage.queries import footprint_configs
from storage.tick_reads import ticks_by_symbol


@dataclass(frozen=True)
class SymbolRow:
    id: int
    symbol: str
    market: str
    row_size: float
    # the symbol's footprint_config row (absent: every parameter at its default)
    footprint: Mapping[str, object] = field(default_factory=dict)

    @property
    def config(self) -> FootprintConfig:
        """The symbol's footprint parameters; ValueError names a bad one (the symbol's
        sessions are then skipped and reported, the others computed)."""
        return FootprintConfig.from_row(self.footprint)


def active_symbols(conn: psycopg.Connection) -> list[SymbolRow]:
    rows = conn.execute(
        "select id, symbol, market, row_size from symbols where active order by id"
    ).fetchall()
    configs = footprint_configs(conn)
    return [
        SymbolRow(int(r[0]), str(r[1]), str(r[2]), float(r[3]), configs.get(int(r[0]), {}))
        for r in rows
    ]


def copy_out(conn: psycopg.Connection, query: sql.Composable) -> bytes:
    """The CSV text of a query (COPY takes no bind parameters: compose literals)."""
    buffer = io.BytesIO()
    statement = sql.SQL("copy ({}) to stdout with (format csv, header true)").format(query)
    with conn.cursor().copy(statement) as copy:
        for chunk in copy:
            buffer.write(chunk)
    return buffer.getvalue()


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def load_ticks(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[int, pd.DataFrame]:
    """Every tick in [start, end), per symbol: ts, price, size, side, bid, ask."""
    return {sid: cols.profile_frame() for sid, cols in ticks_by_symbol(conn, start, end).items()}


def load_candles(conn: psycopg.Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """candles_1m rows in [start, end): symbol_id, ts, open, high, low, close, volume."""
    query = sql.SQL(
        "select symbol_id, ts, open, high, low, close, volume from candles_1m "
        "where ts >= {} and ts < {} order by symbol_id, ts"
    ).format(sql.Literal(start), sql.Literal(end))
    # round_trip: every double as PostgreSQL wrote it (the resumed runs read them in binary)
    frame = pd.read_csv(
        io.BytesIO(copy_out(conn, query)),
        dtype={"symbol_id": np.int64},
        float_precision="round_trip",
    )
    return _utc(frame, "ts")


def max_tick_seq(conn: psycopg.Connection, start: datetime, end: datetime) -> int:
    """The newest ingest sequence number among the window's ticks, archived days included
    (0 when none)."""
    return tick_reads.max_seq(conn, start, end)


def cvd_totals_before(conn: psycopg.Connection, start: datetime) -> dict[int, float]:
    """Per symbol, the never-resetting CVD of the last stored minute before `start`."""
    rows = conn.execute(
        "select distinct on (symbol_id) symbol_id, cvd_total from order_flow "
        "where bucket < %s and cvd_total is not null order by symbol_id, bucket desc",
        (start,),
    ).fetchall()
    return {int(r[0]): float(r[1]) for r in rows}


def prior_session_profiles(
    conn: psycopg.Connection, start: datetime, lookback_days: int
) -> pd.DataFrame:
    """Stored per-session profiles of the days before `start`: symbol_id, session_date,
    price_level, total_volume (the composite's input for sessions outside the window)."""
    query = sql.SQL(
        "select symbol_id, (bucket at time zone 'UTC')::date as session_date, price_level, "
        "sum(total_volume) as total_volume from volume_profile "
        "where bucket >= {} - make_interval(days => {}) and bucket < {} "
        "group by 1, 2, 3 order by 1, 2, 3"
    ).format(sql.Literal(start), sql.Literal(lookback_days), sql.Literal(start))
    frame = pd.read_csv(
        io.BytesIO(copy_out(conn, query)),
        dtype={"symbol_id": np.int64, "price_level": np.float64, "total_volume": np.float64},
    )
    frame["session_date"] = pd.to_datetime(frame["session_date"]).dt.date
    return frame


def open_naked_pocs(conn: psycopg.Connection, start: date) -> pd.DataFrame:
    """Stored POCs of sessions before `start` whose touch may lie in or after the window:
    symbol_id, session_date, poc, touched_at."""
    rows = conn.execute(
        "select symbol_id, session_date, poc, touched_at from naked_pocs "
        "where session_date < %s and (touched_at is null or touched_at >= %s) "
        "order by symbol_id, session_date",
        (start, start),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["symbol_id", "session_date", "poc", "touched_at"])
    frame["touched_at"] = pd.to_datetime(frame["touched_at"], utc=True)
    return frame


def has_profile_after(conn: psycopg.Connection, symbol_id: int, after: datetime) -> bool:
    row = conn.execute(
        "select exists (select 1 from volume_profile where symbol_id = %s and bucket >= %s)",
        (symbol_id, after),
    ).fetchone()
    return bool(row and row[0])


def first_touch_after(
    conn: psycopg.Connection, symbol_id: int, poc: float, after: datetime
) -> datetime | None:
    """The first stored minute at or after `after` whose traded range contains `poc`."""
    row = conn.execute(
        "select bucket from volume_profile where symbol_id = %s and bucket >= %s "
        "group by bucket having min(price_level) <= %s and max(price_level) >= %s "
        "order by bucket limit 1",
        (symbol_id, after, poc, poc),
    ).fetchone()
    return row[0] if row else None


def _copy_in(
    conn: psycopg.Connection, table: Table, columns: Sequence[str], frame: pd.DataFrame
) -> int:
    if frame.empty:
        return 0
    buffer = io.StringIO()
    frame.loc[:, list(columns)].to_csv(buffer, index=False, header=False, na_rep="")
    statement = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        sql.Identifier(table.value), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        copy.write(buffer.getvalue())
    return len(frame)


def _json_column(values: pd.Series) -> pd.Series:
    return values.map(lambda v: json.dumps(list(v) if v is not None else []))


def replace_window(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    symbol_ids: Sequence[int],
    *,
    volume_profile: pd.DataFrame,
    profile_metrics: pd.DataFrame,
    order_flow: pd.DataFrame,
    footprint: FootprintRows | None = None,
    write_from: datetime | None = None,
    cells_from: Mapping[int, datetime] | None = None,
    rows_from: Mapping[int, datetime] | None = None,
) -> dict[str, int]:
    """Delete the window of these symbols from the tables, then insert the new rows.

    `write_from` (inside the window) limits the per-minute rows replaced to the minutes from
    there on, for every symbol. Per symbol, `cells_from` sets the first minute of
    `volume_profile` and the footprint tables replaced (they follow from the cells and the
    prints, which never change before it) and `rows_from` that of `order_flow` and
    `profile_metrics` (an incremental run: docs/profiles-incremental.md). Composite rows
    (one per session, at its latest minute) are always replaced for the whole window. The
    caller's transaction makes it atomic: a reader sees the old window or the new one.
    """
    footprint = footprint or FootprintRows()
    default = max(start, write_from) if write_from is not None else start
    cells = {int(s): max(start, (cells_from or {}).get(s, default)) for s in symbol_ids}
    rows = {int(s): max(start, (rows_from or {}).get(s, default)) for s in symbol_ids}
    by_cells = (Table.FOOTPRINT_IMBALANCES, Table.SESSION_VWAP, Table.BIG_PRINTS)
    for table, since in (
        (Table.VOLUME_PROFILE, cells),
        (Table.ORDER_FLOW, rows),
        *((t, cells) for t in by_cells),
    ):
        conn.execute(
            sql.SQL(
                "delete from {} as t using unnest(%s::bigint[], %s::timestamptz[]) "
                "as s (id, since) where t.symbol_id = s.id and t.bucket >= s.since "
                "and t.bucket < %s"
            ).format(sql.Identifier(table.value)),
            (list(since), list(since.values()), end),
        )
    conn.execute(
        "delete from profile_metrics as t using unnest(%s::bigint[], %s::timestamptz[]) "
        "as s (id, since) where t.symbol_id = s.id and t.bucket < %s "
        "and ((t.horizon = 'composite' and t.bucket >= %s) or t.bucket >= s.since)",
        (list(rows), list(rows.values()), end, start),
    )
    metrics = _from(profile_metrics, rows, keep=profile_metrics.get("horizon") == "composite")
    if not metrics.empty:  # a day without any session has no frames, not even columns
        for column in ("lvns", "hvns"):
            metrics[column] = _json_column(metrics[column])
    return {
        Table.VOLUME_PROFILE.value: _copy_in(
            conn,
            Table.VOLUME_PROFILE,
            ("symbol_id", *VOLUME_PROFILE_COLUMNS),
            _from(volume_profile, cells),
        ),
        Table.PROFILE_METRICS.value: _copy_in(
            conn, Table.PROFILE_METRICS, ("symbol_id", *PROFILE_METRICS_COLUMNS), metrics
        ),
        Table.ORDER_FLOW.value: _copy_in(
            conn, Table.ORDER_FLOW, ("symbol_id", *ORDER_FLOW_COLUMNS), _from(order_flow, rows)
        ),
        **{
            table.value: _copy_in(conn, table, ("symbol_id", *columns), _from(frame, cells))
            for table, columns, frame in (
                (Table.FOOTPRINT_IMBALANCES, IMBALANCE_COLUMNS, footprint.imbalances),
                (Table.SESSION_VWAP, SESSION_VWAP_COLUMNS, footprint.session_vwap),
                (Table.BIG_PRINTS, BIG_PRINT_COLUMNS, footprint.big_prints),
            )
        },
    }


@dataclass(frozen=True)
class FootprintRows:
    """The footprint tables' rows of a window (all symbols), as `replace_window` writes
    them."""

    imbalances: pd.DataFrame = field(default_factory=pd.DataFrame)
    session_vwap: pd.DataFrame = field(default_factory=pd.DataFrame)
    big_prints: pd.DataFrame = field(default_factory=pd.DataFrame)


def _from(
    frame: pd.DataFrame, since: Mapping[int, datetime], keep: pd.Series | None = None
) -> pd.DataFrame:
    """Rows of `frame` at or after their symbol's `since` (plus those flagged in `keep`)."""
    if frame.empty:
        return frame.copy()
    first = pd.to_datetime(frame["symbol_id"].map(since), utc=True)
    mask = (pd.to_datetime(frame["bucket"], utc=True) >= first).to_numpy(dtype=bool)
    if keep is not None:
        mask |= keep.to_numpy(dtype=bool)
    return frame.loc[mask].copy()


def write_naked_pocs(
    conn: psycopg.Connection,
    window_days: Sequence[date],
    symbol_ids: Sequence[int],
    pocs: pd.DataFrame,
) -> int:
    """Replace the window sessions' POCs and update the touch time of earlier ones."""
    conn.execute(
        "delete from naked_pocs where symbol_id = any(%s) and session_date = any(%s)",
        (list(symbol_ids), list(window_days)),
    )
    if pocs.empty:
        return 0
    rows = [
        (
            int(r.symbol_id),
            r.session_date,
            float(r.poc),
            None if pd.isna(r.touched_at) else pd.Timestamp(r.touched_at).to_pydatetime(),
        )
        for r in pocs.itertuples(index=False)
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into naked_pocs (symbol_id, session_date, poc, touched_at) "
            "values (%s, %s, %s, %s) on conflict (symbol_id, session_date) do update set "
            "poc = excluded.poc, touched_at = excluded.touched_at",
            rows,
        )
    return len(rows)
