"""``marketflow footprint-config`` against a real PostgreSQL: list, show, set, reset, every
refused value leaving the table as it was, and a change reaching the profile runs as the
command says it does (the real tick sensor and profile asset)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.footprint_config import FIELD_NAMES
from assets.profile_io import active_symbols
from core.settings import get_settings
from marketflow.cli import main
from marketflow.commands.footprint_config import OPTIONS


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def table(url: str) -> list[tuple[Any, ...]]:
    """The whole footprint_config table, updated_at included (a no-op write changes it)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select s.symbol, f.* from footprint_config f join symbols s on s.id = f.symbol_id"
            " order by 1"
        ).fetchall()


def stored(url: str, symbol: str) -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "select f.* from footprint_config f join symbols s on s.id = f.symbol_id"
            " where s.symbol = %s",
            (symbol,),
        )
        row = cur.fetchone()
        names = [d.name for d in cur.description or []]
    if row is None:
        return None
    return {k: v for k, v in zip(names, row, strict=True) if k not in ("symbol_id", "updated_at")}


def line_of(out: str, start: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(start))


SET_ALL = [
    "--imbalance-ratio",
    "2.5",
    "--min-volume",
    "10",
    "--big-print-sd",
    "4",
    "--big-print-minutes",
    "60",
    "--nodes",
    "7",
    "--node-prominence",
    "0.15",
    "--node-separation",
    "0.05",
]


def test_set_show_list_and_resets(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["footprint-config"]) == 0
    assert "0 symbols with stored parameters" in capsys.readouterr().out

    assert main(["footprint-config", "aapl"]) == 0  # no row: every parameter its default
    out = capsys.readouterr().out
    assert "AAPL footprint parameters" in out
    assert line_of(out, "--imbalance-ratio")[1:] == ["imbalance_ratio", "3", "3", "default"]
    assert line_of(out, "--nodes") == ["--nodes", "node_count", "5", "5", "default"]
    assert stored(cli_db, "AAPL") is None  # showing wrote nothing

    assert main(["footprint-config", "AAPL", *SET_ALL]) == 0
    out = capsys.readouterr().out
    assert stored(cli_db, "AAPL") == {
        "imbalance_ratio": 2.5,
        "imbalance_min_volume": 10.0,
        "big_print_sd": 4.0,
        "big_print_minutes": 60,
        "node_count": 7,
        "node_prominence": 0.15,
        "node_separation": 0.05,
    }
    assert "changed: imbalance_ratio default → 2.5" in out
    assert line_of(out, "--imbalance-ratio")[2:] == ["2.5", "3", "stored"]
    assert "today's earlier minutes keep the rows computed with the old values" in out
    assert 'dg launch --assets "key:candles_1m or group:profiles" --partition' in out
    # what the profile assets read at a run's start is what was set
    with psycopg.connect(cli_db) as conn:
        aapl = next(s for s in active_symbols(conn) if s.symbol == "AAPL")
    assert (aapl.config.imbalance_ratio, aapl.config.node_count) == (2.5, 7)

    # setting one parameter leaves the others as they are
    assert main(["footprint-config", "ETHUSDT", "--nodes", "3"]) == 0
    capsys.readouterr()
    assert main(["footprint-config", "ETHUSDT", "--big-print-sd", "2"]) == 0
    out = capsys.readouterr().out
    assert "changed: big_print_sd default → 2" in out
    eth = stored(cli_db, "ETHUSDT")
    assert eth is not None and (eth["node_count"], eth["big_print_sd"]) == (3, 2.0)
    assert eth["imbalance_ratio"] is None

    assert main(["footprint-config"]) == 0
    out = capsys.readouterr().out
    assert line_of(out, "symbol")[1:] == [
        "imbalance-ratio",
        "min-volume",
        "big-print-sd",
        "big-print-minutes",
        "nodes",
        "node-prominence",
        "node-separation",
    ]
    assert line_of(out, "default")[1:] == ["3", "0", "3", "30", "5", "0.1", "0.05"]
    assert line_of(out, "AAPL")[1:] == ["2.5", "10", "4", "60", "7", "0.15", "0.05"]
    assert line_of(out, "ETHUSDT")[1:] == ["·", "·", "2", "·", "3", "·", "·"]
    assert "2 symbols with stored parameters" in out

    # partial reset: the named ones only (option or column names)
    assert main(["footprint-config", "AAPL", "--reset", "nodes", "imbalance_min_volume"]) == 0
    out = capsys.readouterr().out
    assert "node_count 7 → default" in out and "imbalance_min_volume 10 → default" in out
    aapl_row = stored(cli_db, "AAPL")
    assert aapl_row is not None
    assert (aapl_row["node_count"], aapl_row["imbalance_min_volume"]) == (None, None)
    assert (aapl_row["imbalance_ratio"], aapl_row["big_print_minutes"]) == (2.5, 60)

    # a partial reset that leaves nothing stored removes the row
    assert main(["footprint-config", "ETHUSDT", "--reset", "nodes", "big-print-sd"]) == 0
    capsys.readouterr()
    assert stored(cli_db, "ETHUSDT") is None

    # full reset
    assert main(["footprint-config", "AAPL", "--reset"]) == 0
    out = capsys.readouterr().out
    assert "imbalance_ratio 2.5 → default" in out
    assert line_of(out, "--imbalance-ratio")[2:] == ["3", "3", "default"]
    assert table(cli_db) == []


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--imbalance-ratio", "0", "--imbalance-ratio (imbalance_ratio) must be > 0, got 0"),
        ("--imbalance-ratio", "-1", "--imbalance-ratio (imbalance_ratio) must be > 0"),
        ("--imbalance-ratio", "nan", "--imbalance-ratio (imbalance_ratio) must be finite"),
        ("--min-volume", "-0.5", "--min-volume (imbalance_min_volume) must be >= 0"),
        ("--min-volume", "inf", "--min-volume (imbalance_min_volume) must be finite"),
        ("--big-print-sd", "0", "--big-print-sd (big_print_sd) must be > 0"),
        ("--big-print-minutes", "0", "--big-print-minutes (big_print_minutes) must be a whole"),
        ("--big-print-minutes", "2.5", "(big_print_minutes) must be a whole number >= 1"),
        ("--nodes", "0", "--nodes (node_count) must be a whole number >= 1"),
        ("--node-prominence", "0", "--node-prominence (node_prominence) must be in (0, 1]"),
        ("--node-prominence", "1.5", "--node-prominence (node_prominence) must be in (0, 1]"),
        ("--node-separation", "1", "--node-separation (node_separation) must be in [0, 1)"),
        ("--node-separation", "-0.1", "--node-separation (node_separation) must be in [0, 1)"),
    ],
)
def test_a_refused_value_changes_nothing(
    cli_db: str, capsys: pytest.CaptureFixture[str], option: str, value: str, words: str
) -> None:
    assert main(["footprint-config", "AAPL", "--nodes", "7"]) == 0
    capsys.readouterr()
    before = table(cli_db)
    # the good value beside the bad one is not written either
    assert main(["footprint-config", "AAPL", "--imbalance-ratio", "2", option, value]) == 2
    out = capsys.readouterr().out
    assert words in out and "nothing changed" in out
    assert table(cli_db) == before
    # a symbol without a row gets none
    assert main(["footprint-config", "MSFT", option, value]) == 2
    capsys.readouterr()
    assert table(cli_db) == before


def test_usage_errors(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["footprint-config", "NOPE", "--nodes", "3"]) == 2
    out = capsys.readouterr().out
    assert "unknown symbol 'NOPE'; known:" in out and "AAPL" in out
    assert main(["footprint-config", "NOPE"]) == 2
    capsys.readouterr()
    assert main(["footprint-config", "--nodes", "3"]) == 2
    assert "name the SYMBOL" in capsys.readouterr().out
    assert main(["footprint-config", "AAPL", "--reset", "colour"]) == 2
    assert "--reset: unknown parameter 'colour'" in capsys.readouterr().out
    assert main(["footprint-config", "AAPL", "--reset", "nodes", "--imbalance-ratio", "2"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse: not a number
        main(["footprint-config", "AAPL", "--nodes", "seven"])
    assert exited.value.code == 2
    assert "--nodes: not a number: 'seven'" in capsys.readouterr().err
    assert table(cli_db) == []


def test_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://marketflow:secret@127.0.0.1:9/marketflow")
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        assert main(["footprint-config", "AAPL"]) == 1
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "cannot reach PostgreSQL" in out and "secret" not in out


def test_every_parameter_has_an_option() -> None:
    assert sorted(OPTIONS.values()) == sorted(FIELD_NAMES)


def test_a_change_reaches_the_sensor_run_from_its_resume_minute_only(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the command prints after a change, checked through the real tick sensor and
    profile asset: the next minute run uses the new R for the minutes it recomputes, the
    earlier ones keep the old R's imbalances, a full run of the partition redoes them."""
    import dagster as dg
    import pandas as pd

    from analytics.sessions import session_bounds
    from tests.dagster.test_profiles_incremental import (
        DAY,
        _insert,
        full_recompute,
        sensor_runs,
        session_ticks,
    )
    from tests.dagster.test_profiles_incremental import stored as stored_rows

    instance = dg.DagsterInstance.ephemeral()
    open_, _close = session_bounds("XNYS", DAY)
    with psycopg.connect(cli_db) as conn:
        (aapl,) = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()
    ticks = session_ticks(open_, 90, 2400, seed=11).assign(symbol_id=aapl)
    first = ticks["ts"] < open_ + pd.Timedelta(minutes=60)
    _insert(cli_db, ticks[first], "a")
    cursor, _ = sensor_runs(cli_db, instance, None)
    old = stored_rows(cli_db)["footprint_imbalances"]

    assert main(["footprint-config", "AAPL", "--imbalance-ratio", "1.5"]) == 0
    capsys.readouterr()
    _insert(cli_db, ticks[~first], "b")
    _cursor, runs = sensor_runs(cli_db, instance, cursor)
    assert [m["incremental"].value for m in runs] == [True]
    after_sensor = stored_rows(cli_db)["footprint_imbalances"]
    full = full_recompute(cli_db)["footprint_imbalances"]  # a run without the sensor's tag

    def part(frame: pd.DataFrame, early: bool) -> pd.DataFrame:
        cut = frame["bucket"] < open_ + pd.Timedelta(minutes=50 if early else 60)
        return frame[cut if early else ~cut].reset_index(drop=True)

    # minutes well before the resume minute: as the old R left them
    pd.testing.assert_frame_equal(part(after_sensor, True), part(old, True))
    # the new minutes: what a full run with the new R writes
    assert len(part(full, False)) > 0
    pd.testing.assert_frame_equal(part(after_sensor, False), part(full, False))
    # and the full run does change the earlier minutes (R 1.5 finds more than R 3)
    assert len(part(full, True)) > len(part(old, True))
