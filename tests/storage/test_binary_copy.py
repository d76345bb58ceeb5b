"""Rows encoded a column at a time for binary COPY (storage/binary_copy.py) store exactly
what psycopg's row-by-row COPY stores; conditions from the text[] cache; the history's
progress moves forward only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import psycopg
import pytest

from storage.binary_copy import encode
from storage.history_progress import advance, read_progress
from storage.text_array_copy import register_text_array_copy
from storage.tick_rows import COLUMNS, COPY_TYPES
from streaming.ingest.rows import TickRows, to_writer_rows
from streaming.ingest.timestamptz_copy import register_timestamptz_copy


def objects(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def odd_rows() -> TickRows:
    """Every kind of value a column can hold: NULLs, empty and long text, non-ASCII,
    lists and tuples of conditions, the µs a ns time truncates to."""
    n = 7
    return TickRows(
        np.full(n, 1, np.int64),
        np.array([1_709_562_600_161_396_176 + k * 1_999 for k in range(n)], np.int64),
        objects(["V-1", "é-2", "3", "", "x" * 300, "a", "b"]),
        np.array([1.5, 2, 3, 4, 5, 6, 7.25]),
        np.array([10, 20, 30, 40, 50, 60, 70.0]),
        np.array([1, -1, 0, 0, 1, 0, -1], np.int8),
        np.array([np.nan, 1.0, np.nan, 2, 3, 4, 5]),
        np.full(n, np.nan),
        objects(["V", None, "D", "D", "D", "é", None]),
        objects([("@", "I"), None, ["@"], ("@", "I"), (), ("é",), None]),
        objects(["backfill"] * n),
        objects(["sip", None, "sip", "sip", "sip", "sip", "iex"]),
    )


def test_column_encoding_stores_what_row_by_row_copy_stores(db_url: str) -> None:
    rows = odd_rows()
    cols = ", ".join(COLUMNS)
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_timestamptz_copy(conn)
        register_text_array_copy(conn)
        for table in ("by_columns", "by_rows"):
            conn.execute(f"create temp table {table} (like ticks including defaults)")
        with (
            conn.cursor() as cur,
            cur.copy(f"copy by_columns ({cols}) from stdin (format binary)") as copy,
        ):
            for part in encode(rows).parts:
                copy.write(part)
        with (
            conn.cursor() as cur,
            cur.copy(f"copy by_rows ({cols}) from stdin (format binary)") as copy,
        ):
            copy.set_types(COPY_TYPES)
            for row in to_writer_rows(rows)[0]:
                copy.write_row(row)
        columns = conn.execute(f"select {cols} from by_columns order by trade_id").fetchall()
        by_rows = conn.execute(f"select {cols} from by_rows order by trade_id").fetchall()
    assert columns == by_rows and len(columns) == 7
    first = min(columns, key=lambda r: r[1])
    assert first[1] == datetime(2024, 3, 4, 14, 30, 0, 161396, tzinfo=UTC)  # truncated
    assert {r[2]: r[6] for r in columns}["é-2"] is None  # NULL conditions
    assert {r[2]: r[6] for r in columns}["a"] == ["é"]


def test_the_history_progress_moves_forward_only(db_url: str) -> None:
    day = date(2024, 3, 4)
    early, late = (datetime(2024, 3, 4, h, tzinfo=UTC) for h in (15, 18))
    with psycopg.connect(db_url, autocommit=True) as conn:
        (sid,) = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()
        advance(conn, day, "iex", {sid: late}, {sid: 10})
        advance(conn, day, "iex", {sid: early}, {sid: 5})  # an older page's, later
        (progress,) = read_progress(conn, day, [sid]).values()
        assert (progress.resume_from, progress.trades_fetched, progress.complete) == (
            late,
            15,
            False,
        )
        advance(conn, day, "iex", {sid: early}, {}, complete=[sid])
        assert read_progress(conn, day, [sid])[sid].complete
        with pytest.raises(ValueError, match="resume point"):
            advance(conn, day, "iex", {}, {sid: 1})
