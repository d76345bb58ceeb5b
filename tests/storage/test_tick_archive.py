"""The tick archive against a real PostgreSQL: a day leaves for Parquet only once its export
checks out, reads back exactly as before, and late prints merge into it (docs/retention.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from bench.synthetic.ticks import insert_ticks, make_ticks
from core.settings import get_settings
from storage import tick_archiver
from storage.tick_archive import ArchiveError, TickArchive
from storage.tick_archiver import archive_day, stored_days
from storage.tick_reads import TickColumns, max_seq, tick_columns, ticks_by_symbol

DAY = date(2024, 3, 5)
NEXT = date(2024, 3, 6)
FIELDS = ("symbol_id", "ts", "price", "size", "side", "bid", "ask", "seq")


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TickArchive]:
    """The configured archive (what the readers use) in a folder of this test."""
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    yield TickArchive.configured()
    get_settings.cache_clear()


def symbol_ids(conn: psycopg.Connection) -> list[int]:
    rows = conn.execute("select id from symbols where symbol in ('AAPL', 'ETHUSDT') order by id")
    return [int(r[0]) for r in rows]


def load(url: str, days: tuple[date, ...] = (DAY, NEXT), n: int = 400) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        ids = symbol_ids(conn)
        for k, day in enumerate(days):
            ticks = make_ticks(ids, _at(day, 1), _at(day, 23), n, seed=k)
            ticks["trade_id"] = [f"{day:%m%d}-{i}" for i in range(len(ticks))]
            insert_ticks(conn, ticks)
        # text columns the generator leaves empty: the archive keeps them too
        conn.execute(
            "update ticks set exchange = 'V', conditions = array['@', 'F, I'] "
            "where trade_id like %s",
            (f"{DAY:%m%d}-1%",),
        )
    return ids


def same(left: TickColumns, right: TickColumns) -> None:
    assert len(left) == len(right) and left.known == right.known
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
        assert getattr(left, name).dtype == getattr(right, name).dtype, name


def rows_of(url: str, day: date) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select symbol_id, ts, trade_id, price, size, exchange, conditions, side, bid, ask, "
            "seq, source, feed from ticks where ts >= %s and ts < %s order by symbol_id, ts, seq",
            (_at(day, 0), _at(day, 0) + timedelta(days=1)),
        ).fetchall()


def test_a_day_moves_to_parquet_and_reads_back_unchanged(db_url: str, archive: TickArchive) -> None:
    ids = load(db_url)
    stored = rows_of(db_url, DAY)
    window = (_at(DAY, 0), _at(NEXT, 12))  # an archived day and half a stored one
    with psycopg.connect(db_url) as conn:
        before = tick_columns(conn, *window)
        before_one = tick_columns(conn, *window, ids[0])
        since = {ids[0]: _at(DAY, 20), ids[1]: _at(NEXT, 3)}
        before_since = ticks_by_symbol(conn, *window, since)
        before_seq = max_seq(conn, _at(DAY, 0), _at(NEXT, 0))

    outcome = archive_day(db_url, archive, DAY)

    assert (outcome.action, outcome.rows) == ("archived", len(stored))
    with psycopg.connect(db_url) as conn:
        assert DAY not in stored_days(conn) and NEXT in stored_days(conn)
        record = conn.execute("select rows, symbols, file from tick_archive").fetchall()
        assert record == [(len(stored), 2, "day=2024-03-05/ticks.parquet")]
        same(tick_columns(conn, *window), before)
        same(tick_columns(conn, *window, ids[0]), before_one)
        after_since = ticks_by_symbol(conn, *window, since)
        assert after_since.keys() == before_since.keys()
        for sid in before_since:
            same(after_since[sid], before_since[sid])
        assert max_seq(conn, _at(DAY, 0), _at(NEXT, 0)) == before_seq
    # every stored column, the symbol's name beside its id
    table = pq.read_table(archive.file_path(DAY), partitioning=None)
    columns = [c for c in table.column_names if c not in ("symbol", "received_at")]
    archived = list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    assert archived == [tuple(r) for r in stored]
    assert set(table.column("symbol").to_pylist()) == {"AAPL", "ETHUSDT"}
    assert ["@", "F, I"] in table.column("conditions").to_pylist()
    manifest = json.loads(archive.manifest_path(DAY).read_text())
    assert manifest["rows"] == len(stored) and manifest["symbols"] == {"AAPL": 400, "ETHUSDT": 400}
    assert pq.ParquetFile(archive.file_path(DAY)).metadata.row_group(0).column(0).compression == (
        "ZSTD"
    )
    # a second run finds the day archived and changes nothing
    assert archive_day(db_url, archive, DAY).action == "already_archived"
    assert archive_day(db_url, archive, date(2024, 3, 1)).action == "nothing_stored"


def test_duckdb_and_polars_read_the_archive_directly(db_url: str, archive: TickArchive) -> None:
    load(db_url)
    for day in (DAY, NEXT):
        assert archive_day(db_url, archive, day).action == "archived"
    glob = str(archive.root / "**" / "*.parquet")
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"select day, symbol, count(*) from read_parquet('{glob}', hive_partitioning = true) "
        "group by all order by all"
    ).fetchall()
    assert rows == [
        (DAY, "AAPL", 400),
        (DAY, "ETHUSDT", 400),
        (NEXT, "AAPL", 400),
        (NEXT, "ETHUSDT", 400),
    ]
    polars = pytest.importorskip("polars")
    frame = polars.scan_parquet(glob, hive_partitioning=True).collect()
    assert frame.height == 1600 and "day" in frame.columns


def test_a_short_or_damaged_export_is_never_followed_by_a_drop(
    db_url: str, archive: TickArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(db_url, (DAY,))
    stored = rows_of(db_url, DAY)
    real_fetch, real_write = tick_archiver.fetch_partition, TickArchive.write_staged

    def short(conn: psycopg.Connection, part: str):  # the export misses its last row
        table = real_fetch(conn, part)
        return table.slice(0, table.num_rows - 1)

    monkeypatch.setattr(tick_archiver, "fetch_partition", short)
    with pytest.raises(ArchiveError, match="PostgreSQL counted 800"):
        archive_day(db_url, archive, DAY)
    monkeypatch.setattr(tick_archiver, "fetch_partition", real_fetch)

    def truncated(self: TickArchive, day: date, table):  # the disk keeps half the file
        path = real_write(self, day, table)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    monkeypatch.setattr(TickArchive, "write_staged", truncated)
    with pytest.raises(ArchiveError, match="cannot be read back"):
        archive_day(db_url, archive, DAY)

    assert rows_of(db_url, DAY) == stored  # the partition and every row are still there
    assert archive.days() == set() and not archive.file_path(DAY).exists()
    assert list(archive.day_dir(DAY).iterdir()) == []  # no staging file left behind
    with psycopg.connect(db_url) as conn:
        assert DAY in stored_days(conn)
        assert conn.execute("select count(*) from tick_archive").fetchone() == (0,)
    monkeypatch.setattr(TickArchive, "write_staged", real_write)
    assert archive_day(db_url, archive, DAY).action == "archived"


def test_rows_arriving_after_the_export_are_exported_before_the_drop(
    db_url: str, archive: TickArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = load(db_url, (DAY,))
    real_export = tick_archiver._export
    calls = []

    def export_then_late_print(conn, archive, day, part):
        manifest = real_export(conn, archive, day, part)
        if not calls:  # a print lands between the export and the lock of the drop
            late = make_ticks([ids[0]], _at(DAY, 22), _at(DAY, 23), 1, seed=99)
            late["trade_id"] = ["late-1"]
            with psycopg.connect(db_url, autocommit=True) as other:
                insert_ticks(other, late)
        calls.append(manifest.rows)
        return manifest

    monkeypatch.setattr(tick_archiver, "_export", export_then_late_print)
    outcome = archive_day(db_url, archive, DAY)
    assert outcome.action == "archived" and calls == [800, 801]
    assert "late-1" in pq.read_table(archive.file_path(DAY)).column("trade_id").to_pylist()


def test_the_drop_waits_for_readers_and_never_blocks_them_long(
    db_url: str, archive: TickArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(db_url, (DAY,))
    monkeypatch.setattr(tick_archiver, "DROP_ATTEMPTS", 2)
    monkeypatch.setattr(tick_archiver, "LOCK_TIMEOUT_MS", 100)
    with psycopg.connect(db_url) as reader:
        reader.execute("select count(*) from ticks").fetchone()  # holds its lock on ticks
        outcome = archive_day(db_url, archive, DAY)
        assert outcome.action == "drop_deferred" and "locked" in outcome.detail
        # exported but not dropped: readers merge both and see each print once
        with psycopg.connect(db_url) as conn:
            assert len(tick_columns(conn, _at(DAY, 0), _at(NEXT, 0))) == 800
    assert archive_day(db_url, archive, DAY).action == "archived"


def test_late_prints_for_an_archived_day_merge_into_it(db_url: str, archive: TickArchive) -> None:
    ids = load(db_url, (DAY,))
    archive_day(db_url, archive, DAY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        archived = pq.read_table(archive.file_path(DAY), partitioning=None).to_pandas()
        # a replay of part of the day plus one print the day never had: ingest re-creates
        # the partition; the replayed key comes back with another price and must lose
        repeat = archived.iloc[[5]][["symbol_id", "ts", "trade_id", "price", "size"]].copy()
        repeat["price"] += 1.0
        repeat["ts"] = repeat["ts"].astype("datetime64[ns, UTC]")
        new = make_ticks([ids[1]], _at(DAY, 23), _at(DAY, 23) + timedelta(minutes=1), 1)
        new["trade_id"] = ["new-1"]
        insert_ticks(conn, pd.concat([repeat, new], ignore_index=True))
        window = (_at(DAY, 0), _at(NEXT, 0))
        merged = tick_columns(conn, *window)
        assert len(merged) == 801
        k = int(np.flatnonzero(merged.seq == archived["seq"].iloc[5])[0])
        assert merged.price[k] == archived["price"].iloc[5]

    outcome = archive_day(db_url, archive, DAY)
    assert (outcome.action, outcome.rows, outcome.merged) == ("archived", 801, 1)
    with psycopg.connect(db_url) as conn:
        assert DAY not in stored_days(conn)
        same(tick_columns(conn, *window), merged)
        # the day's candles were rebuilt from every print before the day left again
        candle = conn.execute(
            "select trade_count from candles_1m where symbol_id = %s and ts = %s",
            (ids[1], _at(DAY, 23)),
        ).fetchone()
        assert candle is not None and candle[0] >= 1


def test_an_archive_that_lost_a_day_is_an_error_not_an_empty_day(
    db_url: str, archive: TickArchive
) -> None:
    load(db_url, (DAY,))
    archive_day(db_url, archive, DAY)
    archive.manifest_path(DAY).unlink()
    with psycopg.connect(db_url) as conn, pytest.raises(ArchiveError, match="TICK_ARCHIVE_DIR"):
        tick_columns(conn, _at(DAY, 0), _at(NEXT, 0))


def test_provenance_survives_the_archive_and_a_rehydration(
    db_url: str, archive: TickArchive
) -> None:
    """ticks.source and ticks.feed (docs/history.md) go to Parquet and come back."""
    ids = load(db_url, (DAY,))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update ticks set source = 'backfill', feed = 'iex' where symbol_id = %s", (ids[0],)
        )
    before = rows_of(db_url, DAY)
    archive_day(db_url, archive, DAY)
    table = pq.read_table(archive.file_path(DAY), partitioning=None)
    source, feed = (table.column(c).to_pylist() for c in ("source", "feed"))
    kinds = set(zip(source, feed, strict=True))
    assert kinds == {("backfill", "iex"), ("unknown", None)}
    with psycopg.connect(db_url, autocommit=True) as conn:  # a late print re-opens the day
        new = make_ticks([ids[1]], _at(DAY, 23), _at(DAY, 23) + timedelta(minutes=1), 1)
        new["trade_id"] = ["late-1"]
        insert_ticks(conn, new)
    assert archive_day(db_url, archive, DAY).rows == len(before) + 1
    again = pq.read_table(archive.file_path(DAY), partitioning=None)
    ids_back, sources = (again.column(c).to_pylist() for c in ("trade_id", "source"))
    pairs = list(zip(ids_back, sources, strict=True))
    assert sorted(pairs) == sorted([(r[2], r[11]) for r in before] + [("late-1", "unknown")])
