"""Bar statistics (docs/semantics.md): trades, the running delta's extremes in stored order,
the mean print size and its sd, on hand-built minutes and on both paths of the print pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analytics.compiled
import analytics.print_kernel
from analytics.bar_stats import BarStats, empty_sums
from analytics.pipeline import compute_session
from analytics.print_kernel import fill_prints

OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")


def minute(prints: list[tuple[float, float, float]], at: int = 0) -> pd.DataFrame:
    """(price, size, venue side) prints in the given minute, in this order."""
    return pd.DataFrame(
        {
            "ts": [
                OPEN + pd.Timedelta(minutes=at, milliseconds=10 * k) for k in range(len(prints))
            ],
            "price": [p for p, _, _ in prints],
            "size": [s for _, s, _ in prints],
            "side": [d for _, _, d in prints],
        }
    )


def test_running_delta_extremes_follow_the_stored_order() -> None:
    # delta after each print: +5, +2, -6, -1, +3 → max 5, min -6; the bar's delta is 3
    ticks = minute([(10.0, 5, 1), (10.01, 3, -1), (10.0, 8, -1), (10.02, 5, 1), (10.0, 4, 1)])
    flow = compute_session(ticks, 0.01, OPEN, CLOSE).order_flow.iloc[0]
    assert (flow.max_delta, flow.min_delta, flow.delta) == (5.0, -6.0, 3.0)
    assert flow.trade_count == 5
    # the same prints in another order: other extremes, the same delta
    again = minute([(10.0, 8, -1), (10.0, 5, 1), (10.01, 3, -1), (10.02, 5, 1), (10.0, 4, 1)])
    flow = compute_session(again, 0.01, OPEN, CLOSE).order_flow.iloc[0]
    assert (flow.max_delta, flow.min_delta, flow.delta) == (3.0, -8.0, 3.0)


def test_extremes_are_after_each_print_not_from_zero() -> None:
    flow = compute_session(minute([(10.0, 2, 1), (10.0, 3, 1)]), 0.01, OPEN, CLOSE).order_flow
    assert (flow.max_delta.iloc[0], flow.min_delta.iloc[0]) == (5.0, 2.0)


def test_split_prints_add_nothing_to_the_running_delta() -> None:
    # the session's first print has no reference: split half/half, its delta 0
    ticks = minute([(10.0, 4, np.nan), (10.01, 1, np.nan), (10.0, 2, np.nan)])
    flow = compute_session(ticks, 0.01, OPEN, CLOSE).order_flow.iloc[0]
    assert (flow.max_delta, flow.min_delta) == (1.0, -1.0)  # 0, +1 (uptick), -1 (downtick)


def test_print_sizes_mean_and_population_sd() -> None:
    ticks = pd.concat([minute([(10.0, s, 1) for s in (1, 2, 3, 10)]), minute([(10.0, 4, 1)], 2)])
    flow = compute_session(ticks, 0.01, OPEN, CLOSE).order_flow
    assert flow.mean_trade_size.iloc[0] == 4.0
    assert flow.trade_size_sd.iloc[0] == pytest.approx(np.std([1, 2, 3, 10]))
    assert flow.trade_size_sd.iloc[2] == 0.0  # one print
    assert np.isnan(flow.max_delta.iloc[1]) and np.isnan(flow.mean_trade_size.iloc[1])
    assert flow.trade_count.tolist() == [4, 0, 1]


def test_minutes_without_prints_have_no_statistics() -> None:
    stats = BarStats.from_sums(empty_sums(3), np.zeros(3, dtype=np.int64))
    assert np.isnan(stats.max_delta).all() and np.isnan(stats.mean_size).all()
    assert (stats.volume == 0).all() and (stats.price_m2 == 0).all()


@pytest.mark.parametrize("parts", [1, 4])
def test_both_paths_of_the_print_pass_give_the_same_sums(
    parts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(4)
    n = 30_000
    price = np.round(100 + np.cumsum(rng.choice([-0.05, 0.0, 0.05], n)), 2)
    size = rng.integers(1, 300, n) * rng.choice([1.0, 0.37], n)
    side = np.where(rng.random(n) < 0.3, rng.choice([-1.0, 1.0], n), np.nan)
    starts = np.linspace(0, n, 41).astype(np.int64)
    starts[5] = starts[6]  # an empty minute
    bins = np.floor(price / 0.05 + 0.5).astype(np.int64)
    first_bin, n_bins = int(bins.min()), int(bins.max() - bins.min()) + 1
    monkeypatch.setattr(analytics.compiled, "SPLIT_MIN_ITEMS", n // parts)
    monkeypatch.setattr(analytics.compiled, "cores", lambda: parts)
    sums = {}
    for path, compiled in (("compiled", True), ("numpy", False)):
        monkeypatch.setattr(analytics.print_kernel, "use_compiled", lambda items, c=compiled: c)
        bars = empty_sums(40)
        grids = (np.zeros((40, n_bins)), np.zeros((40, n_bins)), np.zeros((40, n_bins), np.int64))
        fill_prints(
            price, size, side, None, None, starts, 0.05, first_bin, grids, (np.nan, 0), None, bars
        )
        sums[path] = bars
    assert np.array_equal(sums["compiled"], sums["numpy"], equal_nan=True)  # bit for bit
    # and what they say, minute 7, against a plain loop over its prints
    i0, i1 = starts[7], starts[8]
    stats = BarStats.from_sums(sums["numpy"], np.diff(starts))
    assert stats.mean_size[7] == pytest.approx(size[i0:i1].mean())
    assert stats.size_sd[7] == pytest.approx(size[i0:i1].std())
    assert stats.vwap[7] == pytest.approx(np.average(price[i0:i1], weights=size[i0:i1]))
    assert stats.largest[7] == size[i0:i1].max()
    assert np.isnan(stats.max_delta[5])
