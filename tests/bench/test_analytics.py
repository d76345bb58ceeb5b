"""Smoke run of the profile benchmark at tiny sizes (no timing asserted)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics.pipeline import compute_session
from bench import BenchContext
from bench import profile_duckdb as duckdb
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
    # the footprint additions: bar statistics, session VWAP, imbalances with their stacks
    vwap = frames.session_vwap.set_index("bucket")
    for minute, (high, low, mean, sd, session_vwap, session_sd) in loop["bars"].items():
        row = flow.iloc[minute]
        assert (row.max_delta, row.min_delta) == pytest.approx((high, low))
        assert (row.mean_trade_size, row.trade_size_sd) == pytest.approx((mean, sd))
        at = vwap.loc[row.bucket]
        assert (at.vwap, at.sd) == pytest.approx((session_vwap, session_sd), rel=1e-9)
    found = {
        (
            int((r.bucket - SESSION_OPEN) // pd.Timedelta(minutes=1)),
            round(r.price / ROW_SIZE),
            r.side,
            r.stack_len,
        )
        for r in frames.imbalances.itertuples()
    }
    assert found == {
        (minute, level, side, stack)
        for minute, rows in loop["imbalances"].items()
        for level, side, stack in rows
    }


@pytest.mark.parametrize("seed", [3, 4])
def test_duckdb_polars_and_compute_session_compute_the_same_footprint(seed: int) -> None:
    """The engines' footprint, flow and imbalances equal compute_session's, cell for cell;
    their bar statistics and session VWAP agree within float tolerance.

    Integer sizes and half splits keep every footprint sum exact, so those floats compare
    equal whatever order each engine adds them in.
    """
    ticks = make_ticks(3_000, seed=seed)
    # a few zero-tick runs across minute boundaries and repeated opening prints
    ticks.loc[:5, "price"] = ticks["price"].iloc[0]
    frames = compute_session(ticks, ROW_SIZE, SESSION_OPEN, CLOSE)
    expected = engines.from_frames(frames, ROW_SIZE)
    got = {
        "duckdb": engines.from_duckdb(duckdb.duckdb_run(duckdb.duckdb_table(ticks), ROW_SIZE)),
        "polars": engines.from_polars(engines.polars_run(engines.polars_frame(ticks), ROW_SIZE)),
    }
    for name, result in got.items():
        pd.testing.assert_frame_equal(result.footprint, expected.footprint, check_dtype=False)
        pd.testing.assert_frame_equal(result.flow, expected.flow, check_dtype=False)
        pd.testing.assert_frame_equal(
            result.imbalances, expected.imbalances, check_dtype=False, check_exact=True
        )
        assert len(expected.imbalances) > 100
        pd.testing.assert_frame_equal(result.bars, expected.bars, check_dtype=False, rtol=1e-9)
        engines.check_same_work(name, result, expected)
