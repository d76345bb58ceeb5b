"""``marketflow archive``: the daily schedule's work from the command line, days before
MARKETFLOW_HISTORY_START included (docs/retention.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.settings import get_settings
from marketflow.cli import main
from storage.tick_archiver import stored_days
from tests.storage.test_tick_archive import DAY, NEXT, load


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")  # `profile` resolves it, never uses it
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    # the days lie before the partitions' start: only the command line archives them
    monkeypatch.setenv("MARKETFLOW_HISTORY_START", "2025-01-01")
    monkeypatch.delenv("TICK_RETENTION_DAYS", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "archive"
    get_settings.cache_clear()


def test_archive_command_moves_the_days_due_and_lists_them(
    db_url: str, env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    load(db_url)
    assert main(["profile", "--symbol", "ethusdt"]) == 0
    profile_before = capsys.readouterr().out
    assert f"{NEXT}" in profile_before  # the day of the last print
    assert main(["archive"]) == 2
    assert "TICK_RETENTION_DAYS is not set" in capsys.readouterr().out
    monkeypatch.setenv("TICK_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    assert main(["archive", "--list"]) == 0
    listed = capsys.readouterr().out
    assert f"{DAY}  due" in listed and f"{NEXT}  due" in listed
    with psycopg.connect(db_url) as conn:
        assert {DAY, NEXT} <= set(stored_days(conn))  # --list changed nothing

    assert main(["archive"]) == 0
    out = capsys.readouterr().out
    assert f"{DAY}  archived  800 rows" in out and f"{NEXT}  archived  800 rows" in out
    with psycopg.connect(db_url) as conn:
        assert not {DAY, NEXT} & set(stored_days(conn))
    assert main(["archive", "--list"]) == 0
    listed = capsys.readouterr().out
    assert f"{DAY}  archived" in listed and "due" not in listed.replace("0 due", "")
    assert sorted(p.name for p in env.iterdir()) == [f"day={DAY}", f"day={NEXT}"]
    # the profile command finds the last print's day in the archive and reads it from there
    assert main(["profile", "--symbol", "ethusdt"]) == 0
    assert capsys.readouterr().out == profile_before
