"""Smoke run of ``bench/polymarket.py`` (quick sizes; speed is reported, never asserted)."""

from __future__ import annotations

from bench import BenchContext
from bench.polymarket import make_messages, run, run_streaming


def test_bench_quick_runs_and_exercises_detection():
    comparisons = run(BenchContext(database_url="unused", redis_url="unused", quick=True))
    assert len(comparisons) == 2
    assert all(c.value > 0 and c.reference_value > 0 for c in comparisons)
    assert comparisons[0].notes["rejects"] == 0


def test_bench_messages_open_opportunities_with_truthful_best_fields():
    markets, snaps, deltas = make_messages(10, 3000)
    _, monitor = run_streaming(markets, snaps, deltas)
    assert monitor.books.rejects.total == 0
    # only frames that move a top (or touch a watched depth) are re-evaluated
    assert 0 < monitor.evaluations < len(deltas) + 2 * len(markets)
    # the generated best_bid/best_ask agree with the maintained ladders
    for book in monitor.books.books.values():
        assert book.best_bid == max(book.bids) and book.best_ask == min(book.asks)
