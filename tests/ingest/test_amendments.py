"""Corrections and cancels in the ingest pipeline, against a real PostgreSQL: applied after
the prints sealed before them, the running minute's candle rebuilt rather than merged with
its stale part, unmatched and malformed ones counted where `marketflow status` and
`ingest_rejects` show them, and amendments that could not be applied before a stop kept
for the next start."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.events import Rejects, Trade, TradeAmendment
from streaming.ingest.amendments import AmendmentQueue
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.replay import EventsProvider
from tests.ingest.test_pipeline import Clock, candle, noon, ticks

pytestmark = pytest.mark.timeout(60)


def config(tmp_path: Path) -> PipelineConfig:
    return PipelineConfig(source="test", spool_dir=tmp_path / "spool")


def trade(t0: datetime, sec: float, price: float, size: float, tid: str) -> Trade:
    return Trade("AAPL", t0 + timedelta(seconds=sec), price, size, trade_id=tid)


def correction(t0: datetime, sec: float, tid: str, new_tid: str, price: float) -> TradeAmendment:
    return TradeAmendment(
        "AAPL", t0 + timedelta(seconds=sec), "correction", tid, 10.0, 100.0, (),
        new_tid, price, 100.0,
    )  # fmt: skip


def test_a_correction_of_the_running_minute_is_in_its_candle(db_url: str, tmp_path: Path) -> None:
    t0 = noon()
    clock = Clock(t0 + timedelta(seconds=30))

    async def scenario() -> IngestPipeline:
        pipe = IngestPipeline(db_url, None, config(tmp_path), clock=clock)
        await pipe.start(EventsProvider([], ["AAPL"]))
        for t in (trade(t0, 5, 10, 100, "1"), trade(t0, 10, 10, 100, "2")):
            pipe.accept(t)
        await pipe.flush_once()  # stored; the builder still holds the minute's candle
        # the correction arrives with a print sealed in the same flush, after it
        pipe.accept(trade(t0, 20, 11, 50, "3"))
        pipe.accept(correction(t0, 10, "2", "2b", 14.0))
        await pipe.flush_once()
        clock.set(t0 + timedelta(seconds=63))  # the minute's end and grace have passed
        await pipe.flush_once()
        await pipe.shutdown()
        return pipe

    pipe = asyncio.run(scenario())
    assert pipe.amendments.counts["applied"] == 1
    assert [(r[1], r[2]) for r in ticks(db_url, "AAPL")] == [("1", 10), ("2b", 14), ("3", 11)]
    # rebuilt from the corrected ticks: not the stale part (10) merged with the new one
    assert candle(db_url, "AAPL", t0) == (10, 14, 10, 11, 250, 3)


def test_unmatched_and_malformed_amendments_are_counted(db_url: str, tmp_path: Path) -> None:
    t0 = noon()
    clock = Clock(t0 + timedelta(minutes=5))

    async def scenario() -> IngestPipeline:
        pipe = IngestPipeline(db_url, None, config(tmp_path), clock=clock)
        await pipe.start(EventsProvider([], ["AAPL"]))
        pipe.accept(trade(t0, 5, 10, 100, "1"))
        pipe.accept(TradeAmendment("AAPL", t0, "cancel", "never-seen"))
        pipe.accept(correction(t0, 5, "1", "1b", math.nan))  # no usable corrected price
        pipe.accept(TradeAmendment("ZZZZ", t0, "cancel", "1"))  # unknown symbol
        await pipe.flush_once()
        await pipe.shutdown()  # the final flush persists the counters
        return pipe

    pipe = asyncio.run(scenario())
    status = pipe.status_counters()
    assert (status["amendments_applied"], status["amendments_unmatched"]) == (0, 1)
    with psycopg.connect(db_url) as conn:
        rejects = dict(conn.execute("select reason, count from ingest_rejects").fetchall())
        recorded = conn.execute("select trade_id, outcome from tick_corrections").fetchall()
    assert rejects == {"amendment_unmatched": 1, "malformed_amendment": 1, "unknown_symbol": 1}
    assert recorded == [("never-seen", "unmatched")]
    assert [r[1] for r in ticks(db_url, "AAPL")] == ["1"]  # nothing lost


def test_amendments_kept_at_a_stop_are_applied_by_the_next_start(
    db_url: str, tmp_path: Path
) -> None:
    t0 = noon()
    rejects = Rejects("test")
    path = config(tmp_path).spool_dir / "test.amendments.jsonl"
    spilled = AmendmentQueue(path, rejects)
    with psycopg.connect(db_url) as conn:
        (sid,) = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone() or (0,)
    from streaming.ingest.amendments import to_row

    spilled.stage(to_row(correction(t0, 5, "1", "1b", 12.0), sid))
    assert spilled.spill() == 1 and path.exists()

    async def scenario() -> IngestPipeline:
        pipe = IngestPipeline(db_url, None, config(tmp_path), clock=Clock(t0 + timedelta(hours=1)))
        provider = EventsProvider([trade(t0, 5, 10, 100, "1")], ["AAPL"])
        await pipe.run(provider)  # stores the print, then the restored correction
        return pipe

    pipe = asyncio.run(scenario())
    assert pipe.amendments.counts["applied"] == 1
    assert [(r[1], r[2]) for r in ticks(db_url, "AAPL")] == [("1b", 12)]
    assert not path.exists()  # applied: the file is gone


def test_queue_spill_and_restore_round_trip(tmp_path: Path) -> None:
    t0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
    path = tmp_path / "a.jsonl"
    queue = AmendmentQueue(path, Rejects("x"))
    from streaming.ingest.amendments import to_row

    rows = [
        to_row(correction(t0, 1, "a", "b", 2.0), 7),
        to_row(TradeAmendment("AAPL", t0, "cancel", "c", exchange="D", tape="C"), 7),
    ]
    queue.stage(rows[0])
    queue.seal()
    queue.stage(rows[1])
    assert queue.spill() == 2 and len(queue) == 0
    path.write_text(path.read_text() + "{not json\n")
    again = AmendmentQueue(path, Rejects("x"))
    assert again.restore() == 2 and again.restore() == 0  # once per run
    assert again.take_ready() == rows
    assert again.rejects.counts == {"amendment_spool_unreadable": 1}
