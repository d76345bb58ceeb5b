"""Heartbeat hashes in Redis and `marketflow status` reading them (real Redis/PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import redis

from core.contracts import STATUS_TTL_SECONDS
from marketflow.commands.status import collect, human_duration, process_status, render
from streaming.heartbeat import Heartbeat, status_fields

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_status_fields_keep_contract_fields() -> None:
    fields = status_fields(42, "h", "t0", "t1", {"ticks": 10, "pid": 999, "lag": 0.5})
    assert fields == {
        "ticks": "10",
        "lag": "0.5",
        "pid": "42",
        "host": "h",
        "started_at": "t0",
        "heartbeat_at": "t1",
    }


def test_process_status_ok_and_stale() -> None:
    fields = {
        "pid": "7",
        "started_at": (NOW - timedelta(hours=2)).isoformat(),
        "heartbeat_at": (NOW - timedelta(seconds=3)).isoformat(),
        "ticks": "5",
    }
    ok = process_status("ingest", fields, NOW)
    assert (ok.state, ok.pid, ok.counters) == ("ok", 7, {"ticks": "5"})
    assert human_duration(ok.uptime_s) == "2h00m"
    fields["heartbeat_at"] = (NOW - timedelta(seconds=20)).isoformat()
    assert process_status("ingest", fields, NOW).state == "stale"


def test_heartbeat_writes_hash_with_ttl_and_removes_it(redis_url: str) -> None:
    counts = {"ticks": 0}

    async def scenario() -> None:
        async with Heartbeat(redis_url, "ingest", lambda: counts, interval=0.05) as hb:
            counts["ticks"] = 17
            while hb.beats < 3:
                await asyncio.sleep(0.02)
            client = redis.Redis.from_url(redis_url, decode_responses=True)
            data = client.hgetall("status:ingest")
            ttl = client.ttl("status:ingest")
            assert data["pid"] == str(os.getpid()) and data["ticks"] == "17"
            assert datetime.fromisoformat(data["heartbeat_at"]).tzinfo is not None
            assert 0 < ttl <= STATUS_TTL_SECONDS
        assert not client.exists("status:ingest")  # a clean stop leaves no stale entry
        client.close()

    asyncio.run(scenario())


def test_heartbeat_survives_redis_down() -> None:
    async def scenario() -> None:
        hb = Heartbeat("redis://127.0.0.1:1/0", "engine", lambda: {"x": 1}, interval=0.05)
        assert await hb.beat() is False
        assert await hb.beat() is False
        await hb.stop()

    asyncio.run(scenario())


def test_collect_reports_processes_and_ingest_lag(redis_url: str, db_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        sid = conn.execute("select id from symbols where symbol = 'MSFT'").fetchone()[0]
        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size) values (%s, %s, 'a', 1, 1)",
            (sid, now - timedelta(seconds=30)),
        )
        conn.execute(
            "insert into ingest_rejects (day, source, reason, count, sample, last_seen) "
            "values (current_date, 'alpaca_ws', 'bad_json', 3, '{', now())"
        )
    client = redis.Redis.from_url(redis_url)
    client.hset(
        "status:ingest",
        mapping={
            "pid": "11",
            "started_at": now.isoformat(),
            "heartbeat_at": now.isoformat(),
            "ticks": "123",
        },
    )
    client.close()
    report = collect(redis_url, db_url, now=now)
    assert [p.name for p in report.processes] == ["ingest"]
    assert report.last_tick is not None and report.last_tick["symbol"] == "MSFT"
    assert 29 <= report.last_tick["lag_s"] <= 31
    text = render(report)
    assert "ingest" in text and "ticks=123" in text and "lag 30s" in text
    assert "not reporting: engine, web" in text
    assert "alpaca_ws/bad_json × 3" in text


def test_collect_when_nothing_reachable() -> None:
    report = collect("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x")
    text = render(report)
    assert "Redis is not reachable" in text and "marketflow up" in text
    assert "database not reachable" in text


def test_collect_reads_a_driver_qualified_database_url(db_url: str, redis_url: str) -> None:
    """Found in review: ``postgresql+psycopg://`` (accepted everywhere else) made status
    report the database as unreachable; the password never shows in the report."""
    from storage.db import sqlalchemy_url

    report = collect(redis_url, sqlalchemy_url(db_url))
    assert report.database_error is None
    secret = collect(
        "redis://127.0.0.1:1/0", "postgresql+psycopg://trader:hunter2@127.0.0.1:1/market"
    )
    assert secret.database_error is not None and "hunter2" not in render(secret)


def test_status_command_when_nothing_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MARKETFLOW_HOME"] = str(tmp_path / "home")
    res = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "Nothing is running" in res.stdout and "marketflow up" in res.stdout
    assert "Traceback" not in res.stderr


def test_up_status_file_says_what_up_restarts_while_redis_is_down(tmp_path: Path) -> None:
    """Heartbeats live in Redis: while `up` restarts Redis, its status file still says so."""
    from marketflow import up_status

    status = up_status.UpStatus(
        pid=os.getpid(),
        updated_at=NOW.timestamp() - 2,
        logs=str(tmp_path / "logs"),
        addresses=[("Dashboard", "http://127.0.0.1:8000/")],
        processes=[
            up_status.Supervised("redis", "server", "down", None, 2, "signal SIGKILL", "t1"),
            up_status.Supervised("postgres", "server", "running", 41, 1, "gone", "t0"),
            up_status.Supervised("ingest", "child", "running", 42, 0),
        ],
    )
    up_status.write(tmp_path, status)
    assert (tmp_path / up_status.STATUS_FILE).stat().st_mode & 0o077 == 0
    read = up_status.read(tmp_path)
    assert read == status
    report = collect("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/x", now=NOW)
    report.up = read
    text = render(report)
    assert "Supervised by `marketflow up`" in text and "updated 2s ago" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert lines["redis"].split()[1:4] == ["down", "-", "2"]
    assert "signal SIGKILL at t1" in lines["redis"]
    assert "Process heartbeats are unknown while Redis is not reachable" in text
    assert "  Dashboard  http://127.0.0.1:8000/" in text  # the address block, kept here too
    # left by an `up` that was killed: not shown as running
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    up_status.write(tmp_path, up_status.UpStatus(int(gone.stdout), 0.0, "", [], []))
    assert up_status.read(tmp_path) is None
    up_status.remove(tmp_path)
    assert up_status.read(tmp_path) is None
