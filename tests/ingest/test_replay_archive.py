"""``marketflow replay --archived-day``: a day of the tick archive back through the ingest
path into another database, every print with its id, side and quote (docs/retention.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from core.service_urls import with_database
from core.settings import get_settings
from marketflow.cli import main
from storage.tick_archive import TickArchive
from storage.tick_archiver import archive_day
from tests.conftest import create_database, drop_database
from tests.storage.test_tick_archive import DAY, load

COLUMNS = ("symbol", "ts", "trade_id", "price", "size", "side", "bid", "ask")


@pytest.fixture
def second_db(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    name = create_database(pg_admin_url, template=migrated_template)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


def test_an_archived_day_replays_into_another_database(
    db_url: str,
    second_db: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", second_db)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        load(db_url, (DAY,))
        archive = TickArchive.configured()
        assert archive_day(db_url, archive, DAY).action == "archived"
        assert main(["replay", "--archived-day", "2024-03-06"]) == 2
        assert "2024-03-06 is not in the tick archive" in caplog.text
        assert main(["replay", "--archived-day", DAY.isoformat(), "--fast"]) == 0
    finally:
        get_settings.cache_clear()
    table = pq.read_table(archive.file_path(DAY), columns=list(COLUMNS), partitioning=None)
    archived = sorted(zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True))
    with psycopg.connect(second_db) as conn:
        replayed = conn.execute(
            "select s.symbol, t.ts, t.trade_id, t.price, t.size, t.side, t.bid, t.ask "
            "from ticks t join symbols s on s.id = t.symbol_id order by 1, 2, 3"
        ).fetchall()
    assert len(replayed) == 800
    assert [tuple(r) for r in replayed] == archived


def test_archived_day_and_file_are_exclusive(caplog: pytest.LogCaptureFixture) -> None:
    assert main(["replay"]) == 2
    assert main(["replay", "x.csv", "--archived-day", date(2024, 3, 5).isoformat()]) == 2
    assert main(["replay", "--archived-day", "March 5"]) == 2
    assert "wants a date like 2024-03-05" in caplog.text
