"""bench.dagster_load's arithmetic and its child environment (the 10-minute run itself is
documented in docs/operations.md, not part of the suite)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.dagster_load import Sample, child_env, leftovers, report


def test_report_extrapolates_created_rows_per_hour_and_day() -> None:
    first = Sample(
        at=1_000.0,
        runs={"minute_job": 4},
        events={"STEP_START": 10},
        events_by_job={"minute_job": 200},
        database_bytes=10_000_000,
        runs_created=4,
        events_created=210,
        market_ticks=100,
    )
    last = Sample(
        at=1_600.0,  # ten minutes later
        runs={"minute_job": 14, "signals_job": 2},
        events={"STEP_START": 40, "ASSET_MATERIALIZATION": 50},
        events_by_job={"minute_job": 750, "signals_job": 168},
        database_bytes=12_000_000,
        runs_created=16,
        events_created=928,
        runs_stored=16,
        events_stored=928,
        market_ticks=40_100,
    )
    out = report(first, last, ("AAPL",))
    assert out["minutes"] == 10.0 and out["market_ticks"] == 40_000
    assert (out["runs"], out["runs_per_hour"], out["runs_per_day"]) == (12, 72.0, 1728)
    assert out["runs_by_job"] == {"minute_job": 10, "signals_job": 2}
    assert (out["event_rows"], out["event_rows_per_hour"]) == (718, 4308)
    assert out["event_rows_per_run_by_job"] == {"minute_job": 55.0, "signals_job": 84.0}
    assert out["event_rows_by_type"] == {"ASSET_MATERIALIZATION": 50, "STEP_START": 30}
    assert out["database_growth_mb_per_day"] == 288.0


def test_a_deleted_run_still_counts_as_created() -> None:
    """Under --prune-minutes the stored counts fall; the rates use the tables' ids."""
    first = Sample(at=0.0, runs={"minute_job": 6}, runs_created=6, events_created=300)
    last = Sample(at=600.0, runs={"minute_job": 6}, runs_created=16, events_created=800)
    out = report(first, last, ())
    assert (out["runs"], out["event_rows"]) == (10, 500)


def test_the_platform_gets_a_private_home_and_embedded_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("MARKETFLOW_DB", "other")
    monkeypatch.setenv("DEMO_RATE", "999")
    env = child_env(tmp_path, ("AAPL", "BTCUSD"), 8102, 3102)
    assert "DATABASE_URL" not in env and "MARKETFLOW_DB" not in env and "DEMO_RATE" not in env
    assert env["MARKETFLOW_HOME"] == str(tmp_path) and env["SYMBOLS"] == "AAPL,BTCUSD"
    assert (env["WEB_PORT"], env["DAGSTER_PORT"], env["PROVIDER"]) == ("8102", "3102", "demo")
    assert env["MARKETFLOW_API_TOKEN"] and env["MARKETFLOW_BIND_HOST"] == "127.0.0.1"


def test_leftovers_finds_the_processes_of_a_home_only(tmp_path: Path) -> None:
    assert leftovers(tmp_path, {os.getpid()}) == []
    child = subprocess.Popen(["sleep", "30"], env={**os.environ, "MARKETFLOW_HOME": str(tmp_path)})
    try:
        assert leftovers(tmp_path, {os.getpid()}) == [child.pid]
        assert leftovers(tmp_path / "other", {os.getpid()}) == []
    finally:
        child.kill()
        child.wait()
    assert leftovers(tmp_path, {os.getpid()}) == []
