"""What Dagster writes under ``marketflow up``: runs, event-log rows, ticks, database growth.

``.venv/bin/python -m bench.dagster_load --minutes 10`` starts the whole platform
(``marketflow up``: embedded PostgreSQL and Redis in a private temporary home, the demo
provider at its default rate, ingest, engine, dashboard, Dagster webserver and daemon),
lets it run, stops it, and reports what the Dagster instance gained in that time: runs per
hour (by job), event-log rows per hour (by event type), sensor and schedule ticks, and the
growth of the ``dagster`` database and of the Dagster home's files, each extrapolated to a
day. The window starts once the daemon has written its first heartbeat, so start-up is not
counted. docs/operations.md ("Dagster at month scale") holds the figures.

This is a load measurement, not a speed benchmark: there is no reference to take a ratio
against, so it is not one of ``marketflow bench``'s benchmarks.

``--prune-minutes N`` is the soak form: every minute it applies the daily retention job's
rule (orchestration/run_retention.py) with a cutoff N minutes back instead of days, so a short
run shows what a week does to the stored rows: they stop growing once the window is full.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from core.service_urls import STATE_FILE, redact_text
from storage.db import libpq_url

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "BTCUSD", "ETHUSDT")  # two 24/7 markets: busy at any hour
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 90.0
# processes of the run still alive this long after `up` exited are reported (a Dagster code
# server lingers up to about 45 s after its parent stopped)
LINGER_S = 60.0
DAY_S = 86_400.0
DBT_TARGET = Path(__file__).resolve().parents[1] / "dbt_project" / "target"


@dataclass
class Sample:
    """The instance's counters at one moment."""

    at: float
    runs: dict[str, int] = field(default_factory=dict)  # job name → runs created
    events: dict[str, int] = field(default_factory=dict)  # event type → rows
    events_by_job: dict[str, int] = field(default_factory=dict)  # job ("" runless) → rows
    ticks: dict[str, int] = field(default_factory=dict)  # "sensor/skipped" → rows
    database_bytes: int = 0
    home_bytes: int = 0  # the Dagster home's files (compute logs)
    dbt_target_bytes: int = 0  # dbt artifacts the marts runs leave in dbt_project/target
    market_ticks: int = 0
    runs_created: int = 0  # the runs table's newest id: deletions do not lower it
    events_created: int = 0  # likewise for event_logs
    runs_stored: int = 0
    events_stored: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(home: Path, symbols: tuple[str, ...], web_port: int, dagster_port: int) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DAGSTER_HOME")
        and not k.startswith(("MARKETFLOW_", "DEMO_"))
    }
    env.update(
        MARKETFLOW_HOME=str(home),
        MARKETFLOW_BIND_HOST="127.0.0.1",
        MARKETFLOW_API_TOKEN=secrets.token_urlsafe(24),
        PROVIDER="demo",
        SYMBOLS=",".join(symbols),
        WEB_PORT=str(web_port),
        DAGSTER_PORT=str(dagster_port),
        POLYMARKET_ENABLED="false",
        AUTO_TRADING_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def _urls(home: Path) -> tuple[str, str] | None:
    """(market, dagster) database URLs of the run's embedded server, once it wrote them."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        state = json.loads((home / STATE_FILE).read_text())
        return libpq_url(state["database_url"]), libpq_url(state["dagster_database_url"])
    return None


def _count(conn: psycopg.Connection, sql: str) -> dict[str, int]:
    return {str(k): int(n) for k, n in conn.execute(sql).fetchall()}


def dagster_ready(dagster_url: str) -> bool:
    """The daemon is running: its heartbeat is in the instance's storage."""
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(dagster_url, connect_timeout=3) as conn,
    ):
        row = conn.execute("select count(*) from daemon_heartbeats").fetchone()
        return bool(row and row[0])
    return False


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def take_sample(market_url: str, dagster_url: str, dagster_home: Path) -> Sample:
    sample = Sample(
        at=time.time(), home_bytes=tree_bytes(dagster_home), dbt_target_bytes=tree_bytes(DBT_TARGET)
    )
    with psycopg.connect(dagster_url) as conn:
        sample.runs = _count(conn, "select pipeline_name, count(*) from runs group by 1")
        sample.events = _count(
            conn,
            "select coalesce(dagster_event_type, 'LOG_MESSAGE'), count(*) from event_logs "
            "group by 1",
        )
        sample.events_by_job = _count(
            conn,
            "select coalesce(r.pipeline_name, ''), count(*) from event_logs as e "
            "left join runs as r on r.run_id = e.run_id group by 1",
        )
        sample.ticks = _count(
            conn,
            "select case type when 'SENSOR' then 'sensor' else 'schedule' end || '/' "
            "|| lower(status), count(*) from job_ticks group by 1",
        )
        row = conn.execute(
            "select pg_database_size(current_database()), "
            "(select coalesce(max(id), 0) from runs), (select count(*) from runs), "
            "(select coalesce(max(id), 0) from event_logs), (select count(*) from event_logs)"
        ).fetchone()
        assert row is not None
        sample.database_bytes, sample.runs_created, sample.runs_stored = map(int, row[:3])
        sample.events_created, sample.events_stored = int(row[3]), int(row[4])
    with psycopg.connect(market_url) as conn:
        row = conn.execute("select count(*) from ticks").fetchone()
        sample.market_ticks = int(row[0]) if row else 0
    return sample


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    keys = set(after) | set(before)
    out = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return dict(sorted(((k, v) for k, v in out.items() if v), key=lambda kv: -kv[1]))


def report(first: Sample, last: Sample, symbols: tuple[str, ...]) -> dict[str, object]:
    """The figures of the window between two samples, per hour and per day."""
    seconds = max(1.0, last.at - first.at)
    per_hour, per_day = 3600.0 / seconds, DAY_S / seconds
    runs = _delta(last.runs, first.runs)
    events = _delta(last.events, first.events)
    ticks = _delta(last.ticks, first.ticks)
    run_count = last.runs_created - first.runs_created
    event_count = last.events_created - first.events_created
    grown = last.database_bytes - first.database_bytes
    home_grown = last.home_bytes - first.home_bytes
    dbt_grown = last.dbt_target_bytes - first.dbt_target_bytes
    return {
        "minutes": round(seconds / 60.0, 2),
        "symbols": list(symbols),
        "market_ticks": last.market_ticks - first.market_ticks,
        "runs": run_count,
        "runs_per_hour": round(run_count * per_hour, 1),
        "runs_per_day": round(run_count * per_day),
        "runs_by_job": runs,
        "event_rows": event_count,
        "event_rows_per_hour": round(event_count * per_hour),
        "event_rows_per_day": round(event_count * per_day),
        "event_rows_per_run": round(event_count / run_count, 1) if run_count else None,
        "event_rows_by_type": events,
        "event_rows_per_run_by_job": {
            job: round(rows / runs[job], 1) if runs.get(job) else rows
            for job, rows in _delta(last.events_by_job, first.events_by_job).items()
        },
        "ticks": ticks,
        "ticks_per_day": round(sum(ticks.values()) * per_day),
        "runs_stored": last.runs_stored,
        "event_rows_stored": last.events_stored,
        "database_bytes": last.database_bytes,
        "database_growth_mb_per_day": round(grown * per_day / 1e6, 1),
        "home_growth_mb_per_day": round(home_grown * per_day / 1e6, 1),
        "dbt_target_growth_mb_per_day": round(dbt_grown * per_day / 1e6, 1),
    }


class Pruner:
    """The retention job's rule applied to the run's instance, with a cutoff in minutes."""

    def __init__(self, dagster_home: Path, dagster_url: str, minutes: float) -> None:
        import dagster as dg
        from sqlalchemy.engine import make_url

        # dagster.yaml names the variable its storage password is read from
        config = json.loads((dagster_home / "dagster.yaml").read_text().split("\n", 1)[1])
        secret = config["storage"]["postgres"]["postgres_db"].get("password")
        password = make_url(dagster_url).password
        if isinstance(secret, dict) and password:
            os.environ[secret["env"]] = str(password)
        self.instance = dg.DagsterInstance.from_config(str(dagster_home))
        self.minutes = minutes
        self.deleted = 0

    def prune(self) -> None:
        from orchestration.run_retention import delete_runs_before

        cutoff = datetime.now(UTC) - timedelta(minutes=self.minutes)
        self.deleted += delete_runs_before(self.instance, cutoff).deleted

    def close(self) -> None:
        self.instance.dispose()


def leftovers(home: Path, exclude: set[int]) -> list[int]:
    """Live processes started for this run (MARKETFLOW_HOME is its home), zombies aside."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        with contextlib.suppress(OSError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            if f"MARKETFLOW_HOME={home}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def stop(proc: subprocess.Popen, home: Path) -> list[int]:
    """SIGINT `up` (Ctrl-C), wait, and return the run's processes still alive after it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + LINGER_S
    while (left := leftovers(home, {os.getpid()})) and time.monotonic() < deadline:
        time.sleep(1.0)
    return left


def measure(
    minutes: float,
    symbols: tuple[str, ...],
    web_port: int,
    dagster_port: int,
    prune_minutes: float | None = None,
) -> int:
    home = Path(tempfile.mkdtemp(prefix="marketflow-dagster-load-")).resolve()
    log_path = home / "up.log"
    print(f"[dagster_load] home {home}; {minutes:g} min; symbols {','.join(symbols)}", flush=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "marketflow.cli", "up"],
            env=child_env(home, symbols, web_port, dagster_port),
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C here is not its: it is stopped in order
        )
    outcome: dict[str, object] = {}
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        urls = None
        while time.monotonic() < deadline and proc.poll() is None:
            urls = _urls(home)
            if urls is not None and dagster_ready(urls[1]):
                break
            time.sleep(2.0)
        else:
            print(f"[dagster_load] the platform did not come up; see {log_path}", flush=True)
            return 1
        assert urls is not None
        market_url, dagster_url = urls
        first = take_sample(market_url, dagster_url, home / "dagster")
        pruner = Pruner(home / "dagster", dagster_url, prune_minutes) if prune_minutes else None
        end = first.at + minutes * 60.0
        while (now := time.time()) < end and proc.poll() is None:
            time.sleep(min(60.0, end - now))
            if pruner is not None:
                pruner.prune()
            current = take_sample(market_url, dagster_url, home / "dagster")
            progress = report(first, current, symbols)
            print(
                f"[dagster_load] {progress['minutes']} min: runs {progress['runs']} "
                f"(stored {current.runs_stored}), event rows {progress['event_rows']} "
                f"(stored {current.events_stored}), database {current.database_bytes / 1e6:.1f}"
                f" MB, ticks {progress['market_ticks']}",
                flush=True,
            )
        if pruner is not None:
            outcome["runs_pruned"] = pruner.deleted
            pruner.close()
        if proc.poll() is not None:
            print(f"[dagster_load] `up` exited early ({proc.returncode}); see {log_path}")
            return 1
        outcome.update(
            report(first, take_sample(market_url, dagster_url, home / "dagster"), symbols)
        )
    finally:
        left = stop(proc, home)
    outcome["processes_left"] = len(left)
    print(redact_text(json.dumps(outcome, indent=2)), flush=True)
    if left:
        print(f"[dagster_load] processes of the run still alive: {left}", flush=True)
        return 1
    shutil.rmtree(home, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dagster_load", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="window length (default 10)")
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="demo symbols")
    parser.add_argument("--web-port", type=int, default=0, help="dashboard port (default: free)")
    parser.add_argument("--dagster-port", type=int, default=0, help="Dagster UI port (free)")
    parser.add_argument(
        "--prune-minutes",
        type=float,
        default=None,
        help="soak form: every minute, delete runs older than this many minutes",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    return measure(
        args.minutes,
        symbols,
        args.web_port or free_port(),
        args.dagster_port or free_port(),
        args.prune_minutes,
    )


if __name__ == "__main__":
    sys.exit(main())
