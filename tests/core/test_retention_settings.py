"""TICK_RETENTION_DAYS and TICK_ARCHIVE_DIR: unset keeps every tick; 0 or a negative number
is refused when the settings load, with a message naming the variable (docs/retention.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, get_settings
from marketflow.cli import main


@pytest.mark.parametrize("value", ["0", "-1", "-30"])
def test_zero_or_negative_retention_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICK_RETENTION_DAYS", value)
    with pytest.raises(ValidationError, match=f"TICK_RETENTION_DAYS={value} refused"):
        Settings(_env_file=None)


def test_retention_unset_blank_or_positive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TICK_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("TICK_ARCHIVE_DIR", raising=False)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path))
    settings = Settings(_env_file=None)
    assert settings.tick_retention_days is None
    assert settings.archive_dir == (tmp_path / "archive" / "ticks").resolve()
    monkeypatch.setenv("TICK_RETENTION_DAYS", " ")
    assert Settings(_env_file=None).tick_retention_days is None
    monkeypatch.setenv("TICK_RETENTION_DAYS", "30")
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "cold"))
    settings = Settings(_env_file=None)
    assert settings.tick_retention_days == 30
    assert settings.archive_dir == (tmp_path / "cold").resolve()
    monkeypatch.setenv("TICK_RETENTION_DAYS", "a week")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_the_command_line_says_which_setting_is_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICK_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    try:
        assert main(["archive", "--list"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "TICK_RETENTION_DAYS=0 refused" in err
    assert "Traceback" not in err
