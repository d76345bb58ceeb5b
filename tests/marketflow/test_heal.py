"""A running `marketflow up` heals its embedded servers (docs/operations.md, supervision).

The PostgreSQL postmaster, then Redis, are SIGKILLed under a real `up`: each must come back
on the same port with the same password, ticks keep flowing (ingest buffered meanwhile),
the engine and the dashboard reconnect, `marketflow status` shows the restarts, and after
the stop every trade the demo feed emitted (its ledger) is stored exactly once.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from core.service_urls import resolve_urls
from core.settings import Settings
from marketflow.chaos.verify import candle_mismatches, tick_accounting
from marketflow.commands.up import READY_LINE
from marketflow.embedded.process import free_port, pid_alive
from marketflow.services import Services
from streaming.providers.demo_run import LEDGER_FILE
from tests.marketflow.test_supervisor import wait_gone


@dataclass
class Platform:
    home: Path
    proc: subprocess.Popen[bytes]
    output: Path
    env: dict[str, str]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def settings(self) -> Settings:
        return Settings(_env_file=None, MARKETFLOW_HOME=str(self.home))


def wait_until(what: str, check: Callable[[], bool], timeout: float, platform: Platform) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if platform.proc.poll() is not None:
            break
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {timeout:.0f}s\n{platform.text()[-4000:]}")


@pytest.fixture
def platform(service_home: Path) -> Iterator[Platform]:
    home = service_home / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        MARKETFLOW_HOME=str(home),
        WEB_PORT=str(free_port()),
        DAGSTER_PORT=str(free_port()),
        MARKETFLOW_API_TOKEN=secrets.token_urlsafe(16),
        PROVIDER="demo",
        SYMBOLS="BTCUSD,ETHUSDT",
        DEMO_STEADY="true",
        DEMO_RATE="20",
        DEMO_START=f"{time.time():.0f}",  # replayable: the feed keeps a ledger of its trades
        PYTHONUNBUFFERED="1",
    )
    output = service_home / "up.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "marketflow.cli", "up", "--no-dagster", "--stop-timeout", "8"],
            env=env,
            cwd=service_home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Platform(home, proc, output, env)
    try:
        wait_until("the platform up", lambda: READY_LINE in running.text(), 120, running)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stored(database_url: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            row = conn.execute("select count(*) from ticks").fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


def heartbeat(redis_url: str, name: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2)
    try:
        return client.hgetall(f"status:{name}")  # type: ignore[return-value]
    except redis.RedisError:
        return {}
    finally:
        client.close()


def beat_after(redis_url: str, name: str, moment: float, field: str, value: str) -> bool:
    """The process beat after ``moment`` (time.time()) and its ``field`` reads ``value``."""
    from datetime import datetime

    beat = heartbeat(redis_url, name)
    at = beat.get("heartbeat_at")
    return (
        at is not None
        and datetime.fromisoformat(at).timestamp() > moment
        and beat.get(field) == value
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_up_restarts_killed_postgres_and_redis_and_loses_nothing(platform: Platform) -> None:
    urls = resolve_urls(platform.settings())
    pg_port, redis_port = (u.rsplit(":", 1)[1].split("/")[0] for u in (urls.database_url,
                                                                      urls.redis_url))  # fmt: skip
    wait_until("ticks stored", lambda: stored(urls.database_url) > 50, 60, platform)

    pidfile = platform.home / "postgres" / "server" / "data" / "postmaster.pid"
    postmaster = int(pidfile.read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    killed_pg = time.time()
    wait_until("PostgreSQL back", lambda: "started postgres" in platform.text(), 60, platform)
    wait_until("PostgreSQL answering", lambda: stored(urls.database_url) >= 0, 30, platform)
    before = stored(urls.database_url)
    wait_until("ticks flowing", lambda: stored(urls.database_url) > before + 20, 30, platform)
    new_postmaster = int(pidfile.read_text().split()[0])
    assert new_postmaster != postmaster and pidfile.read_text().split()[3] == pg_port
    wait_until(
        "the engine back on PostgreSQL",
        lambda: beat_after(urls.redis_url, "engine", killed_pg + 1, "db_connected", "1"),
        30,
        platform,
    )

    redis_pid = int((platform.home / "redis" / "redis.addr").read_text().split()[0])
    web_before = int(heartbeat(urls.redis_url, "web").get("received", "0"))
    os.kill(redis_pid, signal.SIGKILL)
    killed_redis = time.time()
    wait_until("Redis back", lambda: "started redis" in platform.text(), 60, platform)
    addr = (platform.home / "redis" / "redis.addr").read_text().split()
    assert int(addr[0]) != redis_pid and addr[1] == redis_port
    assert redis.Redis.from_url(urls.redis_url).ping()  # same URL, same password
    wait_until(
        "the dashboard resubscribed and receiving",
        lambda: beat_after(urls.redis_url, "web", killed_redis + 1, "redis_subscribed", "1")
        and int(heartbeat(urls.redis_url, "web").get("received", "0")) > web_before,
        45,
        platform,
    )

    status = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "status"],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines() if
            line.startswith(("  postgres", "  redis"))}  # fmt: skip
    assert rows["postgres"][1] == "running" and int(rows["postgres"][3]) >= 1, status.stdout
    assert rows["redis"][1] == "running" and int(rows["redis"][3]) >= 1, status.stdout
    up_beat = heartbeat(urls.redis_url, "up")
    assert int(up_beat["postgres.restarts"]) >= 1 and int(up_beat["redis.restarts"]) >= 1

    platform.proc.send_signal(signal.SIGTERM)
    assert platform.proc.wait(timeout=90) == 0, platform.text()[-4000:]
    output = platform.text()
    assert f"postgres (pid {postmaster}) is gone" in output
    assert f"redis (pid {redis_pid}) exited with signal SIGKILL" in output
    events = (platform.home / "logs" / "up.log").read_text()
    assert "started postgres" in events and "started redis" in events
    assert (platform.home / "logs" / "ingest.log").stat().st_size > 0
    assert not wait_gone(f"MARKETFLOW_HOME={platform.home}", 10, platform.home)

    # every trade the feed emitted is stored once, candles agree with the ticks
    services = Services(platform.settings())
    again = services.start()
    try:
        with psycopg.connect(again.database_url) as conn:
            count = tick_accounting(conn, platform.home / LEDGER_FILE)
            mismatches = candle_mismatches(conn)
    finally:
        services.stop()
    assert count.emitted > 200 and count.stored == count.emitted
    assert (count.lost, count.duplicated, count.unexpected, count.foreign) == (0, 0, 0, 0)
    assert mismatches == 0
    assert not pid_alive(new_postmaster)
