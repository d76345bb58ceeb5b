"""``marketflow backfill`` as a process against the local Alpaca server and a real
PostgreSQL: two days fetched, then candles and profiles through Dagster; a re-run stores
nothing; bad arguments and missing keys say what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from tests.dagster.test_tick_history import DAYS, day_tape
from tests.support.fake_alpaca import FakeAlpaca
from tests.support.loop_thread import serving
from tests.support.paths import REPO

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def fake(captures: Path) -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (server,):
        server.tape = [p for day in DAYS for p in day_tape(captures, day)]
        server.page_size = 50
        yield server


def backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "backfill", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=200,
    )  # fmt: skip


def env_for(db_url: str, home: Path, fake: FakeAlpaca | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALPACA", "APCA", "DAGSTER_HOME", "SYMBOLS"))
    }
    env.update(DATABASE_URL=db_url, MARKETFLOW_HOME=str(home), **extra)
    if fake is not None:
        env.update(
            ALPACA_DATA_URL=fake.rest_url, ALPACA_API_KEY=fake.key, ALPACA_SECRET_KEY=fake.secret
        )
    return env


def test_two_days_then_candles_and_profiles(db_url: str, fake: FakeAlpaca, tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = env_for(db_url, tmp_path, fake, DAGSTER_HOME=str(dagster_home))
    args = ("--provider", "alpaca", "--symbols", "AAPL,BTC/USD", "--from", "2024-03-04",
            "--to", "2024-03-05")  # fmt: skip
    done = backfill(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "2024-03-04" in out and "2024-03-05" in out
    assert "2 days, 420 trades stored" in out
    assert "candles_1m:" in out and "profiles: 4 sessions computed" in out
    assert "backfill" in done.stderr and "symbol-day" in done.stderr  # the progress bar
    assert fake.key not in out + done.stderr and fake.secret not in out + done.stderr
    with psycopg.connect(db_url) as conn:
        per_symbol = dict(
            conn.execute(
                "select s.symbol, count(*) from ticks t join symbols s on s.id = t.symbol_id"
                " where t.source = 'backfill' group by 1"
            ).fetchall()
        )
        (candles,) = conn.execute("select count(*) from candles_1m").fetchone()
        (profiled,) = conn.execute("select count(*) from naked_pocs").fetchone()
    assert per_symbol == {"AAPL": 300, "BTCUSD": 120}  # BTC/USD is stored as BTCUSD
    assert candles > 0 and profiled == 4
    # the run is the Dagster instance's, as a backfill from the UI would be
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    (run,) = instance.get_runs()
    assert run.tags["dagster/asset_partition_range_start"] == "2024-03-04"

    again = backfill(env, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 days, 0 trades stored" in again.stdout


def test_arguments_and_missing_keys_say_what_to_do(db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path, None)
    backwards = backfill(env, "--symbols", "AAPL", "--from", "2024-03-05", "--to", "2024-03-04")
    assert backwards.returncode == 2 and "is before --from" in backwards.stderr
    keyless = backfill(env, "--symbols", "AAPL", "--from", "2024-03-04", "--no-profiles")
    assert keyless.returncode == 1
    assert "ALPACA_API_KEY" in keyless.stdout and "resumes" in keyless.stdout
