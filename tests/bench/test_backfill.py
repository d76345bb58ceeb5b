"""Smoke run of ``bench/backfill.py`` (tiny sizes): the local Alpaca server process serves
the day, the backfill stores every trade, and the ratios are finite."""

from __future__ import annotations

import math

import pytest

from bench import BenchContext
from bench.backfill import run

pytestmark = pytest.mark.timeout(180)


def test_backfill_benchmark_quick(db_url: str, redis_url: str) -> None:
    results = run(BenchContext(db_url, redis_url, quick=True))
    assert [r.unit for r in results] == ["trades/s", "s"]
    for r in results:
        assert math.isfinite(r.ratio) and r.value > 0 and r.reference_value > 0
