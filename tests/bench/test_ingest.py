"""Smoke run of ``bench/ingest.py`` (tiny sizes): it runs and reports finite ratios."""

from __future__ import annotations

import math

import pytest

from bench import BenchContext
from bench.ingest import run

pytestmark = pytest.mark.timeout(120)


def test_ingest_benchmark_quick(db_url: str, redis_url: str) -> None:
    results = run(BenchContext(db_url, redis_url, quick=True))
    assert [r.unit for r in results] == ["ticks/s", "ms"]
    for r in results:
        assert math.isfinite(r.ratio) and r.value > 0 and r.reference_value > 0
