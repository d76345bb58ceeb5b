"""Smoke run of the profile benchmark at tiny sizes (no timing asserted)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics.pipeline import compute_session
from bench import BenchContext
from bench import profile_engines as engines
from bench.profile import ROW_SIZE, SESSION_MINUTES, SESSION_OPEN, make_ticks, python_loop, run

CLOSE = SESSION_OPEN + pd.Timedelta(minutes=SESSION_MINUTES)


def test_profile_benchmark_quick_run() -> None:
    comparison, *against = run(BenchContext(database_url="", redis_url="", quick=True))
    assert [c.name.split(" 0.2")[0] for c in against] == [
        "compute_session vs floor",
        "compute_session vs Polars",
        "compute_session vs DuckDB",
    ]
    assert all(c.value == comparison.value and c.reference_value > 0 for c in against)
    assert comparison.unit == "ms" and not comparison.higher_is_better
    assert comparison.value > 0 and comparison.reference_value > 0
    assert math.isfinite(comparison.ratio)
    assert comparison.notes["metric_rows"] == 2 * 390  # 1m and session rows, every minute


def test_reference_loop_matches_the_vectorised_order_flow() -> None:
    ticks = make_ticks(5_000, seed=3)
    frames = compute_session(ticks, ROW_SIZE, SESSION_OPEN, CLOSE)
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


@pytest.mark.parametrize("seed", [3, 4])
def test_duckdb_polars_and_compute_session_compute_the_same_footprint(seed: int) -> None:
    """The engines' footprint and flow equal compute_session's, cell for cell.

    Integer sizes and half splits keep every sum exact, so the floats compare equal
    whatever order each engine adds them in.
    """
    ticks = make_ticks(3_000, seed=seed)
    # a few zero-tick runs across minute boundaries and repeated opening prints
    ticks.loc[:5, "price"] = ticks["price"].iloc[0]
    frames = compute_session(ticks, ROW_SIZE, SESSION_OPEN, CLOSE)
    expected = engines.from_frames(frames.volume_profile, frames.order_flow, ROW_SIZE)
    got = {
        "duckdb": engines.from_duckdb(engines.duckdb_run(engines.duckdb_table(ticks), ROW_SIZE)),
        "polars": engines.from_polars(engines.polars_run(engines.polars_frame(ticks), ROW_SIZE)),
    }
    for result in got.values():
        pd.testing.assert_frame_equal(result.footprint, expected.footprint, check_dtype=False)
        pd.testing.assert_frame_equal(result.flow, expected.flow, check_dtype=False)
