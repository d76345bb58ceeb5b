"""Run one provider through the pipeline as a process: URLs, heartbeat, signals, progress.

Used by ``marketflow ingest`` and ``marketflow replay``. SIGTERM/SIGINT stop the provider;
the pipeline then flushes its buffers (a clean shutdown loses nothing; what PostgreSQL
cannot take in time stays in the spool for the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time

from core.settings import Settings
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.base import Provider, ProviderError

log = logging.getLogger(__name__)


async def _progress(pipe: IngestPipeline, provider: Provider) -> None:
    total = int(provider.counters.get("total", 0))
    t0 = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        done = int(provider.counters.get("replayed", pipe.counters.received))
        rate = pipe.counters.stored / max(time.monotonic() - t0, 1e-9)
        pct = f" ({100.0 * done / total:.0f} %)" if total else ""
        print(
            f"  read {done:,}{pct}, stored {pipe.counters.stored:,}, "
            f"duplicates {pipe.counters.duplicates:,}, {rate:,.0f} rows/s",
            file=sys.stderr,
            flush=True,
        )


async def run_ingest(
    settings: Settings, provider: Provider, *, source: str, progress: bool = False
) -> int:
    from core.service_urls import ServiceError, resolve_urls
    from streaming.heartbeat import Heartbeat

    try:
        urls = resolve_urls(settings)
    except ServiceError as exc:
        log.error("%s", exc)
        return 2
    pipe = IngestPipeline(
        urls.database_url, urls.redis_url, PipelineConfig.from_settings(settings, source)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, provider.stop)
    ticker = asyncio.create_task(_progress(pipe, provider)) if progress else None
    t0 = time.monotonic()
    heartbeat = Heartbeat(
        urls.redis_url, "replay" if source == "replay" else "ingest", pipe.status_counters
    )
    heartbeat.start()
    try:
        await pipe.run(provider)
    except ProviderError as exc:
        log.error("%s", exc)
        return 2
    finally:
        if ticker is not None:
            ticker.cancel()
        # bounded: a process that was asked to stop must not wait on a hung Redis
        with contextlib.suppress(Exception):
            await asyncio.wait_for(heartbeat.stop(), timeout=5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(provider.aclose(), timeout=10.0)
    c = pipe.counters
    rejected = sum(r.total for r in pipe._reject_sources())
    print(
        f"{source}: {c.received:,} received, {c.stored:,} stored, {c.duplicates:,} duplicates, "
        f"{rejected:,} rejected in {time.monotonic() - t0:.1f} s",
        file=sys.stderr,
    )
    if not pipe.buffer.empty:
        print(f"{len(pipe.buffer):,} rows wait in the spool for the next run", file=sys.stderr)
        return 1
    return 0
