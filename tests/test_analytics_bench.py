"""Smoke run of the profile benchmark at tiny sizes (no timing asserted)."""

from __future__ import annotations

import math

from bench import BenchContext
from bench.profile import make_ticks, python_loop, run


def test_profile_benchmark_quick_run() -> None:
    (comparison,) = run(BenchContext(database_url="", redis_url="", quick=True))
    assert comparison.unit == "ms" and not comparison.higher_is_better
    assert comparison.value > 0 and comparison.reference_value > 0
    assert math.isfinite(comparison.ratio)
    assert comparison.notes["metric_rows"] == 2 * 390  # 1m and session rows, every minute


def test_reference_loop_matches_the_vectorised_order_flow() -> None:
    import pandas as pd

    from analytics.pipeline import compute_session
    from bench.profile import ROW_SIZE, SESSION_MINUTES, SESSION_OPEN

    ticks = make_ticks(5_000, seed=3)
    frames = compute_session(
        ticks, ROW_SIZE, SESSION_OPEN, SESSION_OPEN + pd.Timedelta(minutes=SESSION_MINUTES)
    )
    loop = python_loop(
        ticks["ts"].array.asi8.tolist(), ticks["price"].tolist(), ticks["size"].tolist()
    )
    flow = frames.order_flow
    for minute, (_total, buy, count, cvd) in loop["minutes"].items():
        row = flow.iloc[minute]
        assert row.trade_count == count
        assert abs(row.buy_volume - buy) < 1e-6 and abs(row.cvd - cvd) < 1e-6
    session = frames.profile_metrics[frames.profile_metrics.horizon == "session"]
    for minute, (_, (poc, val, vah, _, _)) in loop["metrics"].items():
        row = session.iloc[minute]
        assert [round(x / ROW_SIZE) for x in (row.poc, row.val, row.vah)] == [poc, val, vah]
