"""Ingest pipeline against a real PostgreSQL and Redis: storage, candles, late prints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.events import Trade
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.replay import EventsProvider

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.ns = int(at.timestamp() * 1e9)

    def __call__(self) -> int:
        return self.ns

    def set(self, at: datetime) -> None:
        self.ns = int(at.timestamp() * 1e9)


def config(tmp_path: Path, **kw: object) -> PipelineConfig:
    return PipelineConfig(source="test", spool_dir=tmp_path / "spool", **kw)  # type: ignore[arg-type]


def noon() -> datetime:
    # today's 12:00 UTC, inside the partitions the migration created
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def candle(url: str, symbol: str, minute: datetime) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select open, high, low, close, volume, trade_count from candles_1m c"
            " join symbols s on s.id = c.symbol_id where s.symbol = %s and c.ts = %s",
            (symbol, minute),
        ).fetchone()


def ticks(url: str, symbol: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select ts, trade_id, price, size, side, bid, ask from ticks t"
            " join symbols s on s.id = t.symbol_id where s.symbol = %s order by ts, seq",
            (symbol,),
        ).fetchall()


def test_v11_timer_finalises_and_late_print_merges(db_url: str, tmp_path: Path) -> None:
    """The late-print example: the 12:00 candle is written by the timer (no later trade
    needed) and the late 12:00:30 print merges into it instead of replacing it."""
    t0 = noon()
    clock = Clock(t0 + timedelta(seconds=59.5))

    def trade(sec: float, price: float, size: float, tid: str) -> Trade:
        return Trade("AAPL", t0 + timedelta(seconds=sec), price, size, trade_id=tid)

    async def scenario() -> None:
        pipe = IngestPipeline(db_url, None, config(tmp_path), clock=clock)
        await pipe.start(EventsProvider([], ["AAPL"]))
        for t in (trade(5, 10, 100, "1"), trade(40, 11, 50, "2"), trade(59, 9, 25, "3")):
            pipe.accept(t)
        await pipe.flush_once()
        assert candle(db_url, "AAPL", t0) is None  # minute still running
        clock.set(t0 + timedelta(seconds=62.5))  # minute end + 2 s grace passed, no trade
        await pipe.flush_once()
        assert candle(db_url, "AAPL", t0) == (10, 11, 9, 9, 175, 3)
        pipe.accept(trade(62, 10.5, 10, "4"))
        pipe.accept(trade(30, 12, 5, "5"))  # late: 12:00 was already written
        await pipe.flush_once()
        assert candle(db_url, "AAPL", t0) == (10, 12, 9, 9, 180, 4)
        await pipe.shutdown()
        assert candle(db_url, "AAPL", t0 + timedelta(minutes=1)) == (10.5, 10.5, 10.5, 10.5, 10, 1)
        assert len(ticks(db_url, "AAPL")) == 5

    asyncio.run(scenario())


def test_unmigrated_database_fails_fast_with_the_next_step(
    empty_db_url: str, tmp_path: Path
) -> None:
    from streaming.ingest.pipeline import IngestError

    pipe = IngestPipeline(empty_db_url, None, config(tmp_path))
    with pytest.raises(IngestError, match="marketflow migrate"):
        asyncio.run(asyncio.wait_for(pipe.start(EventsProvider([], ["AAPL"])), 20))


def test_bars_upsert_and_quote_ticks_of_quote_only_sources(db_url: str, tmp_path: Path) -> None:
    """Bar-only providers (Alpha Vantage) replace their minute's candle; a quote-only
    source (IG Level 1) may send size-0 prints carrying bid/ask."""
    from core.events import Bar

    t0 = noon()
    clock = Clock(t0 + timedelta(minutes=5))
    provider = EventsProvider([], ["MSFT", "VOD.L"])
    provider.zero_size_ok = True

    async def scenario() -> None:
        pipe = IngestPipeline(db_url, None, config(tmp_path), clock=clock)
        await pipe.start(provider)
        pipe.accept(Bar("MSFT", t0, 10, 12, 9, 11, 1000))
        pipe.accept(Bar("MSFT", t0 + timedelta(minutes=1), 11, 11.5, 10.5, 11.2, 500))
        await pipe.flush_once()
        assert candle(db_url, "MSFT", t0) == (10, 12, 9, 11, 1000, 0)
        pipe.accept(Bar("MSFT", t0, 10, 12.5, 9, 11.5, 1200))  # the provider's revision
        pipe.accept(Bar("MSFT", t0, 10, 9, 12, 11, 5))  # high < low: rejected
        q = Trade("VOD.L", t0 + timedelta(minutes=4, seconds=1), 71.52, 0.0,
                  exchange="IG", bid=71.5, ask=71.54)  # fmt: skip
        pipe.accept(q)
        await pipe.shutdown()
        assert candle(db_url, "MSFT", t0) == (10, 12.5, 9, 11.5, 1200, 0)
        assert pipe.rejects.counts == {"inconsistent_bar": 1}
        rows = ticks(db_url, "VOD.L")
        assert len(rows) == 1 and rows[0][3:] == (0.0, None, 71.5, 71.54)

    asyncio.run(asyncio.wait_for(scenario(), 30))
