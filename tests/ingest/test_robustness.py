"""Ingest under bad prices, a full disk, torn spool files and a shutdown with PostgreSQL
down: the plausibility band, the spool's retry and repair, the stop budget."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from core.events import Trade
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.ingest.plausibility import IMPLAUSIBLE, PriceBand
from streaming.ingest.spool import DurableBuffer
from streaming.providers.base import TradeBatch
from streaming.providers.replay import EventsProvider
from tests.support.engine_rows import symbol_ids
from tests.support.paths import REPO
from tests.support.spool_chunks import chunk, drain

pytestmark = pytest.mark.timeout(120)


# --- the band, pure --------------------------------------------------------------------------
def offer_all(band: PriceBand[int], prices: list[float]) -> tuple[list[int], list[int]]:
    kept: list[int] = []
    rejected: list[int] = []
    for k, p in enumerate(prices):
        ok, bad = band.offer("AAPL", p, k)
        kept += ok
        rejected += bad
    return kept, rejected


def test_an_absurd_print_is_rejected_the_rest_kept():
    band: PriceBand[int] = PriceBand(0.5, 5)
    band.seed({"AAPL": 190.0})
    kept, rejected = offer_all(band, [190.1, 38_000.0, 190.2, 19.02, 190.3])
    assert kept == [0, 2, 4] and rejected == [1, 3]
    assert band.ref["AAPL"] == 190.3


def test_a_real_jump_is_held_then_kept_in_order():
    """A level confirmed by five prints in a row is real (a halt reopening): none is lost."""
    band: PriceBand[int] = PriceBand(0.5, 5)
    band.seed({"AAPL": 100.0})
    prices = [100.0, 300.1, 300.2, 300.0, 300.3]
    kept, rejected = offer_all(band, prices)
    assert kept == [0] and rejected == [] and band.held() == 4
    kept, rejected = offer_all(band, [300.4])
    assert kept == [1, 2, 3, 4, 0] and rejected == []  # 0: the sixth offer's own index
    assert band.ref["AAPL"] == 300.4 and band.held() == 0


def test_scattered_prints_never_confirm_and_are_rejected_at_drain():
    band: PriceBand[int] = PriceBand(0.5, 3)
    band.seed({"AAPL": 100.0})
    kept, rejected = offer_all(band, [1000.0, 5.0, 20_000.0, 2.0])
    assert kept == [] and rejected == [0]  # the oldest gave up its place
    assert band.drain() == [1, 2, 3]


def test_first_prints_of_a_new_symbol():
    band: PriceBand[int] = PriceBand(0.5, 5)
    kept, _ = offer_all(band, [50.0, 50.1])  # no stored price: the first print seeds
    assert kept == [0, 1]
    # a batch seeds from the median of its first prints, so one absurd first print loses
    keep, defer = band.judge_batch("NEW", np.array([9_999.0, 10.0, 10.1, 10.0, 9.9, 10.2, 10.05]))
    assert keep.tolist() == [False, True, True, True, True, True, True] and not defer.any()


def test_a_batch_of_a_new_level_moves_the_reference():
    band: PriceBand[int] = PriceBand(0.5, 5)
    band.seed({"BTC": 90_000.0})
    replay = np.full(600, 40_000.0) + np.arange(600)  # an older period replayed
    replay[100] = 4.0
    keep, defer = band.judge_batch("BTC", replay)
    assert int(keep.sum()) == 599 and not keep[100] and not defer.any()


def test_small_batches_of_a_new_level_confirm_across_batches(db_url: str, tmp_path: Path):
    """Batches of two prints each, all at a level far from the stored price (the provider
    changed, or the market really moved): none can confirm alone, together they do, and no
    print is lost."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_close(conn, "AAPL", 190.0)
    t = time.time_ns()
    events = [
        TradeBatch("AAPL", np.array([t + k, t + k + 1]), np.array([400.0 + k, 400.5 + k]),
                   np.array([1.0, 1.0]), trade_id=np.array([f"x{k}a", f"x{k}b"], object))
        for k in range(4)
    ]  # fmt: skip
    pipe = IngestPipeline(db_url, None, PipelineConfig(source="small", spool_dir=tmp_path))
    asyncio.run(pipe.run(EventsProvider(events, ["AAPL"])))
    assert pipe.rejects.total == 0 and pipe.counters.stored == 8


# --- the band through the pipeline ----------------------------------------------------------
def seed_close(conn: psycopg.Connection, symbol: str, close: float) -> None:
    sid = symbol_ids(conn)[symbol]
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    conn.execute(
        "insert into candles_1m (symbol_id, ts, open, high, low, close, volume)"
        " values (%s, %s, %s, %s, %s, %s, 100)",
        (sid, minute, close, close, close, close),
    )


def test_an_absurd_print_is_a_counted_reject_not_a_stored_tick(db_url: str, tmp_path: Path):
    """The issue's print: AAPL at 38 000 next to 190 is rejected with its own reason,
    persisted in ingest_rejects; the prints around it are stored."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_close(conn, "AAPL", 190.0)
    now = datetime.now(UTC)
    events: list[object] = [
        Trade("AAPL", now, 190.05, 10, trade_id="a"),
        Trade("AAPL", now, 38_000.0, 10, trade_id="absurd"),
        Trade("AAPL", now, 190.10, 10, trade_id="b"),
        TradeBatch("AAPL", np.array([time.time_ns()] * 3), np.array([190.2, 1.9, 190.3]),
                   np.array([5.0, 5.0, 5.0]), trade_id=np.array(["c", "tiny", "d"], object)),
    ]  # fmt: skip
    pipe = IngestPipeline(db_url, None, PipelineConfig(source="band", spool_dir=tmp_path))
    asyncio.run(pipe.run(EventsProvider(events, ["AAPL"])))
    assert pipe.rejects.counts == {IMPLAUSIBLE: 2}
    with psycopg.connect(db_url) as conn:
        ids = {r[0] for r in conn.execute("select trade_id from ticks").fetchall()}
        persisted = conn.execute(
            "select count from ingest_rejects where reason = %s", (IMPLAUSIBLE,)
        ).fetchone()
    assert ids == {"a", "b", "c", "d"}
    assert persisted == (2,)


def test_band_setting_off(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_close(conn, "AAPL", 190.0)
    events = [Trade("AAPL", datetime.now(UTC), 38_000.0, 1, trade_id="x")]
    cfg = PipelineConfig(source="noband", spool_dir=tmp_path, price_band=0)
    pipe = IngestPipeline(db_url, None, cfg)
    asyncio.run(pipe.run(EventsProvider(events, ["AAPL"])))
    assert pipe.counters.stored == 1 and pipe.rejects.total == 0


# --- the spool --------------------------------------------------------------------------------
DISK_FULL = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
    from tests.support.spool_chunks import chunk, drain
    from streaming.ingest.spool import DurableBuffer, SpoolFile

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit is EFBIG
    path = Path(sys.argv[1]) / "full.spool"
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    buf = DurableBuffer(path, memory_rows=10)
    buf.push(chunk(0, 10))
    buf.push(chunk(10, 10))  # the first chunk goes to disk
    size = path.stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + size // 2, hard))  # "disk full"
    buf.push(chunk(20, 10))  # its spill fits
    buf.push(chunk(30, 10))  # this one does not: kept in memory, not half-written
    failed = buf.spill_failures
    size_full = path.stat().st_size
    in_memory = buf.memory_rows
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space again
    buf._spill_retry_at = 0.0  # the retry delay has passed
    buf.push(chunk(40, 10))
    got = drain(buf)
    print(json.dumps({"failed": failed, "size_full": size_full, "size": size,
                      "in_memory": in_memory, "got": got, "torn": buf.spool.torn}))
    """
)


def test_disk_full_keeps_the_chunk_and_retries(tmp_path: Path):
    """A real write failure: the spool file is capped by RLIMIT_FSIZE in a subprocess."""
    out = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] >= 1
    assert result["size_full"] <= result["size"] * 3 // 2  # no partial record left behind
    assert result["in_memory"] > 10  # over the memory bound rather than lost
    assert result["got"] == [f"t{i}" for i in range(50)]  # every row, in arrival order
    assert result["torn"] == 0


def test_torn_tail_is_cut_and_appends_continue_cleanly(tmp_path: Path):
    path = tmp_path / "s.spool"
    buf = DurableBuffer(path, memory_rows=0)
    for i in range(3):
        buf.push(chunk(i * 5, 5))
    buf.close()
    intact = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b"\x00\x10\x00\x00\x01\x02\x03\x04half a record")  # a crash mid-append
    again = DurableBuffer(path, memory_rows=0)
    assert again.spool.torn == 1 and path.stat().st_size == intact  # cut, not deleted
    again.push(chunk(15, 5))  # written after the cut: readable
    assert drain(again) == [f"t{i}" for i in range(20)]


def test_a_corrupt_record_costs_only_itself(tmp_path: Path):
    path = tmp_path / "s.spool"
    buf = DurableBuffer(path, memory_rows=0)
    buf.push(chunk(0, 5))
    first_end = path.stat().st_size
    buf.push(chunk(5, 5))
    buf.push(chunk(10, 5))
    buf.close()
    data = bytearray(path.read_bytes())
    data[first_end + 20] ^= 0xFF  # a flipped bit inside the second record's payload
    path.write_bytes(bytes(data))
    again = DurableBuffer(path, memory_rows=0)
    assert drain(again) == [f"t{i}" for i in (*range(5), *range(10, 15))]
    assert again.spool.torn == 1


# --- shutdown within the stop budget, PostgreSQL unreachable --------------------------------
def test_shutdown_with_postgres_hanging_spools_everything_within_budget(
    db_url: str, tmp_path: Path
):
    """PostgreSQL stops answering (connects hang beyond the budget): shutdown spools every
    buffered row first and returns within its budget, so `up`'s SIGKILL finds it done."""
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)  # accepts the TCP handshake, never answers: connects hang
    port = hang.getsockname()[1]
    cfg = PipelineConfig(source="stop", spool_dir=tmp_path, shutdown_timeout_s=2.0)
    pipe = IngestPipeline(db_url, None, cfg)
    now = datetime.now(UTC)

    async def scenario() -> float:
        await pipe.start(EventsProvider([], ["AAPL"]))
        pipe.store.database_url = f"postgresql://nobody@127.0.0.1:{port}/none"
        pipe.cfg.connect_timeout_s = 6  # longer than the budget
        await asyncio.to_thread(pipe.store.close)
        pipe.store.db_up = False
        for k in range(500):
            pipe.accept(Trade("AAPL", now, 190.0 + k * 0.001, 1, trade_id=f"s{k}"))
        t0 = time.monotonic()
        await pipe.shutdown()
        return time.monotonic() - t0

    try:
        elapsed = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        hang.close()
    assert elapsed < cfg.shutdown_timeout_s + 1.0
    pipe.buffer.close()
    spooled = DurableBuffer(tmp_path / "stop.spool", memory_rows=0)
    assert sorted(drain(spooled)) == sorted(f"s{k}" for k in range(500))
