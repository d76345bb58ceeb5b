"""The minute-run benchmark smoke-runs in quick mode (sizes tiny; no timing asserted)."""

from __future__ import annotations

import warnings

import dagster as dg

from bench import BenchContext
from bench.dagster_minute import DESCRIPTION, run

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def test_minute_run_benchmark_quick(db_url: str) -> None:
    results = run(BenchContext(database_url=db_url, redis_url="redis://127.0.0.1:1/0", quick=True))
    assert DESCRIPTION
    names = [c.name for c in results]
    assert names == [
        "minute run, candles+profiles (s)",
        "full-window run, candles+profiles (s)",
        "tick_stream_sensor evaluation (ms)",
    ]
    assert all(c.value > 0 and c.reference_value > 0 for c in results)
    assert results[0].notes["symbols"] == 30
