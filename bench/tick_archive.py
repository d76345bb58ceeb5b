"""The tick archive: archiving a day, and reading it back, each beside PostgreSQL doing the
same in the same run (docs/retention.md).

* archive: ``archive_day`` (candle rebuild, export, read-back check, SQL counts, publish,
  drop) in rows/s, against the floor of getting the rows out of PostgreSQL at all: a binary
  ``COPY (select ... order by ...) TO STDOUT`` of the same partition, drained.
* read: the one tick reader (``tick_columns``) over the whole day from its Parquet file,
  against the same call while PostgreSQL still held the day.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from bench import BenchContext, Comparison
from bench.synthetic.ticks import insert_ticks, make_ticks
from storage.db import connect
from storage.tick_archive import TickArchive, day_bounds
from storage.tick_archiver import archive_day, partition_name
from storage.tick_reads import tick_columns

DESCRIPTION = "tick archive: archive a day vs COPY out; read it back vs from PostgreSQL"

DAY = date(2020, 1, 6)
SYMBOLS = [f"TA{i:02d}" for i in range(10)]


def _load(url: str, per_symbol: int) -> None:
    with connect(url, autocommit=True) as conn:
        ids = []
        for symbol in SYMBOLS:
            row = conn.execute(
                "insert into symbols (symbol, market, timezone) values (%s, '24/7', 'UTC') "
                "on conflict (symbol) do update set symbol = excluded.symbol returning id",
                (symbol,),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
        ticks = make_ticks(ids, start, start + pd.Timedelta(hours=23), per_symbol, seed=3)
        insert_ticks(conn, ticks)
        conn.execute("vacuum analyze ticks")


def _copy_out(url: str) -> float:
    part = partition_name(DAY)
    with connect(url) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(
            f"copy (select * from {part} order by symbol_id, ts, seq) to stdout (format binary)"
        ) as copy:
            for _ in copy:
                pass
        return time.perf_counter() - t0


def _read(url: str, archive: TickArchive) -> tuple[float, int]:
    with connect(url) as conn:
        t0 = time.perf_counter()
        cols = tick_columns(conn, *day_bounds(DAY), archive=archive)
        return time.perf_counter() - t0, len(cols)


def run(ctx: BenchContext) -> list[Comparison]:
    per_symbol = 2_000 if ctx.quick else 100_000
    n = per_symbol * len(SYMBOLS)
    _load(ctx.database_url, per_symbol)
    root = Path(tempfile.mkdtemp(prefix="marketflow-bench-archive-"))
    archive = TickArchive(root)
    try:
        copy_s = min(_copy_out(ctx.database_url) for _ in range(2))
        stored_s = min(_read(ctx.database_url, archive)[0] for _ in range(2))
        t0 = time.perf_counter()
        outcome = archive_day(ctx.database_url, archive, DAY)
        archive_s = time.perf_counter() - t0
        if outcome.action != "archived" or outcome.rows != n:
            raise RuntimeError(f"archive_day: {outcome}")
        reads = [_read(ctx.database_url, archive) for _ in range(2)]
        if any(rows != n for _, rows in reads):
            raise RuntimeError(f"the archive read back {reads} rows, {n} were stored")
        archived_s = min(s for s, _ in reads)
        size = archive.file_path(DAY).stat().st_size
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        Comparison(
            name="archive a day (export, check, drop)",
            unit="rows/s",
            value=n / archive_s,
            reference_name="binary COPY out",
            reference_value=n / copy_s,
            target="not judged: a nightly job; the check reads the file back",
            notes={"rows": n, "parquet_bytes_per_row": size / n},
        ),
        Comparison(
            name="read an archived day (tick_columns)",
            unit="rows/s",
            value=n / archived_s,
            reference_name="same day from PostgreSQL",
            reference_value=n / stored_s,
            target=">= 1.0x of PostgreSQL",
            notes={"rows": n},
        ),
    ]
