"""The engine keeps running through a PostgreSQL restart and a Redis outage, and its loop
skips missed deadlines instead of drifting. Each test owns its own server to stop."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import psycopg
import pytest
import redis

from core.service_urls import with_database
from marketflow.embedded.postgres import EmbeddedPostgres
from marketflow.embedded.redis import EmbeddedRedis
from marketflow.services import ensure_database
from storage.migrate import upgrade
from streaming.engine.loop import Engine
from tests.support.engine_rows import NOW, seed_aapl, settings


def _signals(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute("select count(*) from signals").fetchone()[0]


def test_survives_a_postgres_restart(service_home, redis_url):
    server = EmbeddedPostgres(service_home / "pg")
    admin = server.start()
    try:
        ensure_database(admin, "market")
        url = with_database(admin, "market")
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            seed_aapl(conn)

        async def go() -> Engine:
            engine = Engine(settings(), url, redis_url)
            try:
                first = await engine.tick(NOW)
                assert first.ok and len(first.signals) == 2
                server.stop()
                down = await engine.tick(NOW + timedelta(seconds=1))
                assert not down.ok and down.error  # skipped, not raised
                down2 = await engine.tick(NOW + timedelta(seconds=2))
                assert not down2.ok
                server.start(port=server.port)  # back where the engine's URL points
                engine._next_connect = 0.0  # do not wait out the reconnect pause in a test
                back = await engine.tick(NOW + timedelta(seconds=5))
                assert back.ok, back.error
                assert "state" in back.ran and back.signals == []  # edges kept: no repeats
                return engine
            finally:
                await engine.close()

        engine = asyncio.run(go())
        assert engine.counters.db_errors >= 2
        assert _signals(url) == 2
        with psycopg.connect(url) as c:
            assert c.execute("select count(distinct ts) from market_state").fetchone()[0] >= 1
    finally:
        server.stop()


def test_survives_a_redis_outage(service_home, db_url):
    server = EmbeddedRedis(service_home / "redis")
    url = server.start()
    port = server.port
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_aapl(conn)
        conn.execute("update strategies set cooldown_seconds = 0")

    async def go() -> Engine:
        engine = Engine(settings(), db_url, url)
        try:
            assert (await engine.tick(NOW)).ok
            server.stop()
            with psycopg.connect(db_url, autocommit=True) as conn:  # a new edge while down
                conn.execute("delete from order_flow")
            r = await engine.tick(NOW + timedelta(seconds=5))
            assert r.ok  # the database side goes on: state rows written, publish counted
            assert engine.counters.redis_errors >= 1
            server.start(port=port)  # back where the engine's URL points
            listener = redis.Redis.from_url(url).pubsub()
            listener.subscribe("market_state")
            listener.get_message(timeout=2)
            with psycopg.connect(db_url, autocommit=True) as conn:
                seed_aapl(conn)
            back = await engine.tick(NOW + timedelta(seconds=10))
            assert back.ok
            msg = None
            deadline = time.monotonic() + 3
            while msg is None and time.monotonic() < deadline:
                m = listener.get_message(timeout=0.5)
                if m and m["type"] == "message":
                    msg = json.loads(m["data"])
            listener.close()
            assert msg is not None  # publishing resumed after Redis came back
            return engine
        finally:
            await engine.close()

    try:
        asyncio.run(go())
    finally:
        server.stop()


def test_loop_skips_missed_deadlines(db_url, redis_url):
    """A tick that overruns its second skips the deadlines it missed (no catch-up burst)."""

    async def go() -> Engine:
        engine = Engine(settings(), db_url, redis_url)
        calls: list[float] = []

        async def slow_tick(now=None):
            calls.append(time.monotonic())
            if len(calls) == 1:
                await asyncio.sleep(1.4)
            if len(calls) == 3:
                stop.set()

        stop = asyncio.Event()
        engine.tick = slow_tick  # type: ignore[method-assign]
        await asyncio.wait_for(engine.run(stop), timeout=10)
        await engine.close()
        # the deadline at start+1 fell inside the slow tick: skipped, not run late; the next
        # tick starts on a later whole-second deadline (under heavy load maybe one more)
        skipped = engine.counters.skipped_ticks
        assert skipped >= 1
        assert calls[1] - calls[0] == pytest.approx(1 + skipped, abs=0.35)
        assert calls[2] - calls[1] == pytest.approx(1.0, abs=0.5)
        assert engine.counters.lag_ms >= 300
        return engine

    asyncio.run(go())


def test_cadences_rearm_when_the_wall_clock_steps_back(db_url, redis_url):
    """Cadences run on the wall clock (the loop's ``now``): a clock stepped back (NTP, a
    resumed VM) must not leave market state and reference reloads waiting for the old
    deadline, an hour without a state pass after a one-hour step."""
    engine = Engine(settings(), db_url, redis_url)
    t = NOW.timestamp()
    assert engine._is_due("state", 5.0, t)
    assert not engine._is_due("state", 5.0, t + 1)
    assert engine._is_due("state", 5.0, t + 5)
    assert engine._is_due("state", 5.0, t - 3600)  # stepped back: due again at once
    assert not engine._is_due("state", 5.0, t - 3599)  # and back on its 5 s cadence
    assert engine._is_due("state", 5.0, t - 3595)
    asyncio.run(engine.close())
