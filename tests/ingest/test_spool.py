"""The durable buffer: bounded memory, spill order, torn records, one owner per spool."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.candle import Candle
from core.timestamps import MINUTE_NS, NS
from streaming.ingest.candle_builder import CandleBuilder, aggregate
from streaming.ingest.spool import DurableBuffer, SpoolFile
from tests.support.spool_chunks import chunk, drain


def test_spill_past_the_bound_and_drain_in_arrival_order(tmp_path: Path) -> None:
    buf = DurableBuffer(tmp_path / "s.spool", memory_rows=25)
    for i in range(10):
        buf.push(chunk(i * 10, 10))
    assert buf.memory_rows <= 25 and buf.spilled_rows == 80 and buf.spool.pending
    got = drain(buf)
    assert got == [f"t{i}" for i in range(100)]
    assert buf.empty and not (tmp_path / "s.spool").exists()


def test_round_trip_keeps_every_column(tmp_path: Path) -> None:
    buf = DurableBuffer(tmp_path / "s.spool", memory_rows=0)
    original = chunk(0, 7)
    buf.push(original)
    back = buf.next_chunk(100)
    assert back is not None
    for name in ("symbol_id", "ts_ns", "price", "size", "side", "ask"):
        assert np.array_equal(getattr(back, name), getattr(original, name))
    assert np.isnan(back.bid).all()
    assert back.trade_id.tolist() == original.trade_id.tolist()
    assert back.conditions.tolist() == original.conditions.tolist()


def test_a_failed_write_keeps_the_chunk_first_and_order_intact(tmp_path: Path) -> None:
    buf = DurableBuffer(tmp_path / "s.spool", memory_rows=15)
    buf.push(chunk(0, 10))
    first = buf.next_chunk(1000)
    assert first is not None
    buf.push(chunk(10, 10))  # arrives while the write is in flight: no spill yet
    assert buf.spilled_rows == 0
    buf.release()  # the write failed: now the oldest (the failed chunk) spills first
    assert buf.spilled_rows == 10
    buf.push(chunk(20, 10))
    assert drain(buf) == [f"t{i}" for i in range(30)]


def test_spool_outlives_its_process_and_a_torn_tail_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    buf = DurableBuffer(path, memory_rows=0)
    buf.push(chunk(0, 5))
    buf.push(chunk(5, 5))
    buf.close()
    with open(path, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00garbage")  # a crash in the middle of an append
    again = DurableBuffer(path, memory_rows=0)
    assert drain(again) == [f"t{i}" for i in range(10)]
    assert again.spool.torn == 1 and not path.exists()


def test_second_owner_gets_its_own_spool(tmp_path: Path) -> None:
    one = SpoolFile(tmp_path / "demo.spool")
    two = SpoolFile(tmp_path / "demo.spool")
    assert one.path != two.path and two.path.name == "demo-2.spool"
    one.release()
    three = SpoolFile(tmp_path / "demo.spool")
    assert three.path == tmp_path / "demo.spool"


def test_candle_partials_merge_like_one_pass() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(rng.integers(0, 3 * MINUTE_NS, 400))
    price = rng.normal(100, 1, 400).round(2)
    size = rng.integers(1, 50, 400).astype(float)
    sid = rng.integers(1, 3, 400)
    whole = {(c.symbol_id, c.minute_ns): c for c in aggregate(sid, ts, price, size)}
    order = rng.permutation(400)
    parts: dict[tuple[int, int], Candle] = {}
    for idx in np.array_split(order, 7):  # arbitrary arrival order, several partials
        for c in aggregate(sid[idx], ts[idx], price[idx], size[idx]):
            key = (c.symbol_id, c.minute_ns)
            parts[key] = c if key not in parts else parts[key].merge(c)
    for key, c in whole.items():
        p = parts[key]
        assert (p.open, p.high, p.low, p.close, p.trade_count) == (
            c.open, c.high, c.low, c.close, c.trade_count,
        )  # fmt: skip
        assert p.volume == c.volume and abs(p.value - c.value) < 1e-6


def test_builder_timer_and_late_partials() -> None:
    b = CandleBuilder(grace_s=2.0)
    one = np.array([1], np.int64)
    b.add(one, np.array([5 * NS]), np.array([10.0]), np.array([1.0]), now_ns=6 * NS)
    assert b.due(61 * NS) == ([], [])  # minute end, inside the grace
    final, late = b.due(62 * NS)
    assert [c.close for c in final] == [10.0] and late == []
    assert b.add(one, np.array([30 * NS]), np.array([12.0]), np.array([5.0]), 63 * NS) == []
    final, late = b.due(63 * NS)
    assert final == [] and [(c.high, c.volume) for c in late] == [(12.0, 5.0)]
