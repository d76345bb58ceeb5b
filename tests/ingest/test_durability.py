"""No loss: PostgreSQL restarted mid-stream, spill file past the memory bound, Redis down."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis

from core.events import Trade
from core.service_urls import with_database
from marketflow.embedded.postgres import EmbeddedPostgres
from marketflow.embedded.process import free_port
from storage.migrate import upgrade
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.base import Event, Provider, TradeBatch

# servers of its own: an embedded PostgreSQL restarted mid-stream
pytestmark = [pytest.mark.timeout(120), pytest.mark.integration]


class PacedTrades(Provider):
    """Trades with unique ids, ``per_tick`` every ``interval`` s, until stopped."""

    name = "paced"

    def __init__(
        self, symbols: list[str], per_tick: int = 20, interval: float = 0.01, prefix: str = "p"
    ) -> None:
        super().__init__(symbols)
        self.per_tick, self.interval, self.prefix = per_tick, interval, prefix
        self.sent: list[Trade] = []

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        i = 0
        while not self.stopping:
            for _ in range(self.per_tick):
                sym = self.symbols[i % len(self.symbols)]
                t = Trade(sym, datetime.now(UTC), 100 + (i % 17) * 0.01, 1 + i % 5,
                          trade_id=f"{self.prefix}{i}", exchange="T")  # fmt: skip
                self.sent.append(t)
                i += 1
                yield t
            await asyncio.sleep(self.interval)


class RestartablePostgres(EmbeddedPostgres):
    """The embedded server, restartable on the same port (so the client URL stays valid)."""

    def restart_same_port(self) -> None:
        self.start(port=self.port)


@pytest.fixture(scope="module")
def restartable(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RestartablePostgres, str]]:
    """A server of our own (the tests stop and restart it) with a migrated template.

    Its data lives outside pytest's numbered temp dirs: a concurrent pytest run may prune
    those while this server restarts."""
    root = Path(tempfile.mkdtemp(prefix="mf-ingest-pg-"))
    server = RestartablePostgres(root)
    admin = server.start()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("create database mf_template")
    upgrade(with_database(admin, "mf_template"))
    try:
        yield server, admin
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_server(restartable: tuple[RestartablePostgres, str]) -> tuple[RestartablePostgres, str]:
    server, admin = restartable
    if server._running_port() is None:
        server.restart_same_port()
    name = f"mf_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"create database {name} template mf_template")
    return server, with_database(admin, name)


def stored_stats(url: str) -> tuple[int, int, float, float]:
    with psycopg.connect(url) as conn:
        n, distinct, volume = conn.execute(
            "select count(*), count(distinct (symbol_id, trade_id)), coalesce(sum(size), 0)"
            " from ticks"
        ).fetchone()
        cvol = conn.execute("select coalesce(sum(volume), 0) from candles_1m").fetchone()[0]
    return n, distinct, volume, cvol


async def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_postgres_restart_mid_stream_zero_loss_no_duplicates(
    own_server: tuple[RestartablePostgres, str], tmp_path: Path
) -> None:
    server, url = own_server
    cfg = PipelineConfig(
        source="durability", spool_dir=tmp_path / "spool", flush_ms=30, flush_rows=500,
        memory_rows=300, retry_max_s=0.3, candle_grace_s=0.5,
    )  # fmt: skip
    provider = PacedTrades(["AAPL", "MSFT", "SPY"])
    pipe = IngestPipeline(url, None, cfg)

    async def scenario() -> None:
        task = asyncio.create_task(pipe.run(provider))
        await wait_for(lambda: pipe.counters.stored > 500)
        await asyncio.to_thread(server.stop)  # fast shutdown: live connections are cut
        await wait_for(lambda: not pipe.store.db_up)
        # keep streaming through the outage, past the memory bound → spool file
        await wait_for(lambda: pipe.buffer.spilled_rows > 1000)
        spool = cfg.spool_dir / "durability.spool"
        assert spool.exists() and spool.stat().st_size > 0
        received_in_outage = pipe.counters.received
        await asyncio.to_thread(server.restart_same_port)
        await wait_for(lambda: pipe.store.db_up and pipe.counters.stored >= received_in_outage)
        provider.stop()
        await task
        assert not spool.exists()  # drained and removed

    asyncio.run(asyncio.wait_for(scenario(), 90))
    sent = provider.sent
    assert pipe.counters.db_errors >= 1 and pipe.buffer.spilled_rows > 1000
    n, distinct, volume, candle_volume = stored_stats(url)
    assert n == len(sent) == distinct  # every print once: zero loss, no duplicates
    assert volume == pytest.approx(sum(t.size for t in sent))
    assert candle_volume == pytest.approx(volume)  # candles count every print exactly once


def test_spool_survives_a_process_that_stops_while_postgres_is_down(
    own_server: tuple[RestartablePostgres, str], tmp_path: Path
) -> None:
    """Rows spilled by one process are stored by the next one, oldest first."""
    server, url = own_server
    cfg = PipelineConfig(
        source="restart", spool_dir=tmp_path / "spool", flush_ms=30, memory_rows=100,
        retry_max_s=0.3, shutdown_timeout_s=1.0,
    )  # fmt: skip
    first = PacedTrades(["AAPL"], per_tick=10)

    async def outage() -> IngestPipeline:
        pipe = IngestPipeline(url, None, cfg)
        task = asyncio.create_task(pipe.run(first))
        await wait_for(lambda: pipe.counters.stored > 100)
        await asyncio.to_thread(server.stop)
        await wait_for(lambda: len(first.sent) > pipe.counters.stored + 400)
        first.stop()
        await task  # shutdown cannot reach PostgreSQL: everything left goes to the spool
        return pipe

    pipe1 = asyncio.run(asyncio.wait_for(outage(), 60))
    assert not pipe1.buffer.empty
    server.restart_same_port()
    second = PacedTrades(["AAPL"], per_tick=10, prefix="q")

    async def resume() -> None:
        pipe = IngestPipeline(url, None, cfg)
        task = asyncio.create_task(pipe.run(second))
        await wait_for(lambda: pipe.buffer.empty and pipe.counters.stored > 700)
        second.stop()
        await task

    asyncio.run(asyncio.wait_for(resume(), 60))
    n, distinct, _, _ = stored_stats(url)
    assert n == distinct == len(first.sent) + len(second.sent)
    with psycopg.connect(url) as conn:
        ids = {r[0] for r in conn.execute("select trade_id from ticks").fetchall()}
    assert {t.trade_id for t in first.sent} <= ids


def test_redis_down_never_blocks_storage(db_url: str, tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    cfg = PipelineConfig(source="noredis", spool_dir=tmp_path / "spool", flush_ms=30)
    provider = PacedTrades(["AAPL", "MSFT"])
    pipe = IngestPipeline(db_url, dead_redis, cfg)

    async def scenario() -> None:
        task = asyncio.create_task(pipe.run(provider))
        await wait_for(lambda: pipe.counters.stored > 1000 and pipe.publisher.dropped > 0)
        provider.stop()
        await task

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert pipe.publisher.published == 0 and pipe.publisher.dropped > 0
    assert stored_stats(db_url)[0] == len(provider.sent)
    assert "dropped" in pipe.status_line()


def test_live_updates_published_to_redis(db_url: str, redis_url: str, tmp_path: Path) -> None:
    import orjson

    cfg = PipelineConfig(source="pub", spool_dir=tmp_path / "spool", flush_ms=30)
    provider = PacedTrades(["AAPL"], per_tick=5, interval=0.005)
    pipe = IngestPipeline(db_url, redis_url, cfg)
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub()
    sub.subscribe("ticks:candles", "ticks:trades")

    async def scenario() -> None:
        task = asyncio.create_task(pipe.run(provider))
        await wait_for(lambda: pipe.publisher.published > 20)
        provider.stop()
        await task

    asyncio.run(asyncio.wait_for(scenario(), 60))
    seen: dict[str, list[dict]] = {"ticks:candles": [], "ticks:trades": []}
    while (msg := sub.get_message(timeout=0.5)) is not None or not seen["ticks:trades"]:
        if msg and msg["type"] == "message":
            seen[msg["channel"].decode()].append(orjson.loads(msg["data"]))
        if msg is None:
            break
    sub.close()
    client.close()
    candle = seen["ticks:candles"][-1]
    assert set(candle) == {"symbol", "time", "open", "high", "low", "close", "volume"}
    assert candle["symbol"] == "AAPL" and candle["time"].endswith(":00+00:00")
    # conflated: fewer trade messages than prints, each carrying the prints it stands for
    trades = seen["ticks:trades"]
    assert 0 < len(trades) < len(provider.sent)
    assert sum(t["count"] for t in trades) <= len(provider.sent)
