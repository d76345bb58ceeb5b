"""Smoke run of the engine benchmark (quick sizes): it measures, it compares, it finishes."""

from __future__ import annotations

from bench import BenchContext
from bench.engine import run


def test_engine_bench_quick(db_url, redis_url):
    (comparison,) = run(BenchContext(db_url, redis_url, quick=True))
    assert comparison.unit == "ms" and not comparison.higher_is_better
    assert comparison.value > 0 and comparison.reference_value > 0
    assert comparison.notes["signals"] > 0  # the strategies ran on the seeded rows
    assert comparison.notes["state rows"] >= 50
    assert "engine loop, 50 symbols" in comparison.format()
