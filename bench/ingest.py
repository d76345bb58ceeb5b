"""Ingest end to end: demo → pipeline → PostgreSQL + candles + Redis.

1. Throughput: the demo provider in bulk mode (vectorised, as fast as the pipeline pulls)
   through validation, id derivation, candle building, Redis publishing and the tick writer
   into ``ticks`` and ``candles_1m``; beside it, raw binary COPY of the *same rows* (the
   same seed regenerates them, already converted to tuples) into a plain table with the same
   columns and key, in the same batch size. Targets: >= 50 % of COPY and >= 200 k ticks/s.
2. Latency: 5 k ticks/s of live demo trades; a subscriber measures the time from each
   print's timestamp (its creation) to its arrival on ``ticks:trades``. Beside it, the
   same rate published directly, one ``PUBLISH`` per print, measured the same way.
   The pipeline conflates per symbol, so a superseded print is never sent: the p99 is over
   the messages a dashboard receives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import orjson
import redis
import redis.asyncio as aioredis

from bench import BenchContext, Comparison
from bench.tick_writer import copy_batches
from core.contracts import Channel
from core.timestamps import NS
from storage.db import connect
from storage.text_array_copy import register_text_array_copy
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.ingest.rows import TickRows, to_writer_rows
from streaming.ingest.timestamptz_copy import register_timestamptz_copy
from streaming.providers.base import TradeBatch
from streaming.providers.demo import DemoProvider

DESCRIPTION = "demo → pipeline → PostgreSQL+candles+Redis vs raw COPY; tick→Redis p99"
RAW_TABLE = "bench_ingest_raw"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "SPY"]


def _provider(total: int, start_ns: int) -> DemoProvider:
    return DemoProvider(
        SYMBOLS, rate=250_000.0, seed=11, bulk=True, bulk_chunk=25_000,
        start_ns=start_ns, limit=total,
    )  # fmt: skip


async def _pipeline_run(
    ctx: BenchContext, total: int, start_ns: int, spool: Path
) -> tuple[float, IngestPipeline]:
    cfg = PipelineConfig(source="bench", spool_dir=spool, flush_rows=50_000, flush_ms=100)
    pipe = IngestPipeline(ctx.database_url, ctx.redis_url, cfg)
    provider = _provider(total, start_ns)
    await pipe.start(provider)  # connection and symbols: one-off, not throughput
    t0 = time.perf_counter()
    await pipe.run(provider)
    return time.perf_counter() - t0, pipe


def _same_rows(total: int, start_ns: int, ids: dict[str, int]) -> list[list[tuple]]:
    """The rows the pipeline stored, regenerated from the seed, as COPY tuples."""

    async def collect() -> list[TickRows]:
        out = []
        async for b in _provider(total, start_ns):
            assert isinstance(b, TradeBatch)  # the bulk demo yields batches only
            # ... with trade ids and the quote in force
            assert b.trade_id is not None and b.bid is not None and b.ask is not None
            n = len(b)
            out.append(
                TickRows(
                    np.full(n, ids[b.symbol], np.int64), b.ts_ns, b.trade_id, b.price, b.size,
                    np.zeros(n, np.int8), b.bid, b.ask, np.full(n, b.exchange, object),
                    np.full(n, None, object), np.full(n, "stream", object),
                    np.full(n, "demo", object),
                )
            )  # fmt: skip
        return out

    rows = TickRows.concat(asyncio.run(collect()))
    tuples, _ = to_writer_rows(rows)
    return [tuples[i : i + 50_000] for i in range(0, len(tuples), 50_000)]


def _raw_copy(url: str, batches: list[list[tuple]]) -> float:
    with connect(url, autocommit=True) as conn:
        register_timestamptz_copy(conn)  # the tuples carry int µs times (to_writer_rows)
        register_text_array_copy(conn)  # and the same conditions encoding as its writer's
        conn.execute(f"drop table if exists {RAW_TABLE}")
        conn.execute(f"create table {RAW_TABLE} (like ticks including defaults)")
        conn.execute(f"alter table {RAW_TABLE} add primary key (symbol_id, ts, trade_id)")
        elapsed = copy_batches(conn, RAW_TABLE, batches)
        conn.execute(f"drop table {RAW_TABLE}")
    return elapsed


class _Subscriber:
    """Receives ``ticks:trades`` in a thread; latency = arrival − the print's timestamp."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(Channel.TRADES.value)
        while self.pubsub.get_message(timeout=1.0) is None:
            pass  # the subscribe confirmation
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.pubsub.get_message(timeout=0.1)
            if msg is None or msg["type"] != "message":
                continue
            now = time.time_ns()
            sent = datetime.fromisoformat(orjson.loads(msg["data"])["time"]).timestamp()
            self.latencies_ms.append((now / NS - sent) * 1000.0)

    def close(self) -> list[float]:
        self._stop.set()
        self.thread.join()
        self.pubsub.close()
        self.client.close()
        return self.latencies_ms


async def _pipeline_latency(ctx: BenchContext, seconds: float, spool: Path) -> list[float]:
    rate = 5_000.0 / len(SYMBOLS)
    cfg = PipelineConfig(source="bench-latency", spool_dir=spool, flush_ms=100)
    pipe = IngestPipeline(ctx.database_url, ctx.redis_url, cfg)
    provider = DemoProvider(SYMBOLS, rate=rate, seed=5, shaped=False, poll_interval=0.002)
    sub = _Subscriber(ctx.redis_url)
    task = asyncio.create_task(pipe.run(provider))
    await asyncio.sleep(seconds)
    provider.stop()
    await task
    await asyncio.sleep(0.1)
    return sub.close()


async def _direct_latency(ctx: BenchContext, seconds: float) -> list[float]:
    """Reference: each print published on its own as it is created, at the same rate."""
    client = aioredis.Redis.from_url(ctx.redis_url)
    sub = _Subscriber(ctx.redis_url)
    interval = 0.002
    per_tick = 5_000 * interval
    t_end = time.monotonic() + seconds
    owed = 0.0
    i = 0
    while time.monotonic() < t_end:
        owed += per_tick
        while owed >= 1.0:
            owed -= 1.0
            now = datetime.now().astimezone()
            body = {"symbol": SYMBOLS[i % 4], "time": now.isoformat(), "price": 1.0, "size": 1}
            await client.publish(Channel.TRADES.value, orjson.dumps(body))
            i += 1
        await asyncio.sleep(interval)
    await asyncio.sleep(0.1)
    await client.aclose()
    return sub.close()


def _reset(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("truncate ticks, candles_1m")
        conn.execute("checkpoint")  # both measurements start with clean buffers to flush


def run(ctx: BenchContext) -> list[Comparison]:
    total = 40_000 if ctx.quick else 1_000_000
    seconds = 0.5 if ctx.quick else 4.0
    rounds = 1 if ctx.quick else 2  # alternate and keep the best of each: a shared machine
    start_ns = time.time_ns() - 5 * NS
    best_pipe = best_raw = float("inf")
    with TemporaryDirectory(prefix="mf-bench-ingest-") as tmp:
        spool = Path(tmp)
        for _ in range(rounds):
            _reset(ctx.database_url)
            elapsed, pipe = asyncio.run(_pipeline_run(ctx, total, start_ns, spool))
            stored = pipe.counters.stored
            if stored < total or pipe.rejects.total:
                raise RuntimeError(f"pipeline stored {stored} of {total} ({pipe.status_line()})")
            with connect(ctx.database_url, autocommit=True) as conn:
                candles = conn.execute("select count(*), sum(volume) from candles_1m").fetchone()
                total_row = conn.execute("select sum(size) from ticks").fetchone()
            volume = total_row[0] if total_row else None
            if candles is None or not np.isclose(candles[1] or 0.0, volume or 0.0):
                raise RuntimeError("candle volume does not match the stored ticks")
            ids = {s: i for s in SYMBOLS if (i := pipe.symbols.get(s)) is not None}
            batches = _same_rows(stored, start_ns, ids)
            raw_rows = sum(len(b) for b in batches)
            best_pipe = min(best_pipe, elapsed)
            best_raw = min(best_raw, _raw_copy(ctx.database_url, batches))
        piped = asyncio.run(_pipeline_latency(ctx, seconds, spool))
        direct = asyncio.run(_direct_latency(ctx, seconds))
    assert candles is not None  # checked in every round
    p99 = float(np.percentile(piped, 99)) if piped else float("nan")
    ref99 = float(np.percentile(direct, 99)) if direct else float("nan")
    return [
        Comparison(
            name="ingest demo→PG+candles+Redis",
            unit="ticks/s",
            value=stored / best_pipe,
            reference_name="raw binary COPY",
            reference_value=raw_rows / best_raw,
            target=">= 0.50 of COPY and >= 200k ticks/s",
            notes={
                "rows": stored,
                "candles": float(candles[0]),
                "redis_msgs": pipe.publisher.published,
            },
        ),
        Comparison(
            name="tick→Redis p99 at 5k ticks/s",
            unit="ms",
            value=p99,
            reference_name="direct PUBLISH p99",
            reference_value=ref99,
            higher_is_better=False,
            target="p99 <= 50 ms (tick→browser budget)",
            notes={
                "p50_ms": float(np.percentile(piped, 50)) if piped else float("nan"),
                "messages": float(len(piped)),
                "direct_msgs": float(len(direct)),
            },
        ),
    ]
