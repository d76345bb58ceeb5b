"""Big prints (docs/semantics.md): at least k standard deviations above the mean print size
of the previous minutes, with the reference merged from per-minute statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.big_prints import MIN_REFERENCE_PRINTS, SizeHistory, thresholds
from analytics.footprint_config import FootprintConfig
from analytics.pipeline import PrintHistory, compute_session

OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")


def ticks(sizes_by_minute: list[list[float]], side: float = np.nan) -> pd.DataFrame:
    rows = []
    for m, sizes in enumerate(sizes_by_minute):
        for k, size in enumerate(sizes):
            ts = OPEN + pd.Timedelta(minutes=m, milliseconds=100 * k)
            rows.append({"ts": ts, "price": 10.0 + 0.01 * (k % 3), "size": size, "side": side})
    return pd.DataFrame(rows)


def test_thresholds_merge_the_previous_minutes() -> None:
    trades = np.array([10, 20, 0, 5])
    mean = np.array([2.0, 5.0, np.nan, 1.0])
    sd = np.array([1.0, 2.0, np.nan, 0.0])
    threshold, reference = thresholds(trades, mean, sd, minutes=2, k=3.0)
    # minute 0: no history; minute 1: 10 prints (too few); minute 2: minutes 0-1, 30 prints
    assert np.isnan(threshold[:2]).all()
    pooled = np.concatenate([np.full(10, 2.0) + [1, -1] * 5, np.full(20, 5.0) + [2, -2] * 10])
    assert reference[2] == pytest.approx(pooled.mean())
    assert threshold[2] == pytest.approx(pooled.mean() + 3 * pooled.std())
    # minute 3 looks back on minutes 1-2: the 20 prints of minute 1 alone
    assert threshold[3] == pytest.approx(5.0 + 3 * 2.0)
    assert MIN_REFERENCE_PRINTS == 20


def test_a_print_k_sds_above_the_reference_is_big() -> None:
    quiet = [1.0, 2.0, 3.0, 2.0] * 10  # mean 2, sd 0.707
    frames = compute_session(ticks([quiet, [2.0, 4.0, 4.2, 50.0]]), 0.01, OPEN, CLOSE)
    big = frames.big_prints
    assert big["size"].tolist() == [4.2, 50.0]  # 2 + 3 × 0.7071 = 4.12
    assert big["print_no"].tolist() == [2, 3]
    assert (big["bucket"] == OPEN + pd.Timedelta(minutes=1)).all()
    assert big["threshold"].iloc[0] == pytest.approx(2.0 + 3 * np.sqrt(0.5))
    assert list(big.columns) == ["bucket", "print_no", "ts", "price", "size", "side", "threshold"]


def test_k_and_the_window_come_from_the_config() -> None:
    quiet = [1.0, 2.0, 3.0, 2.0] * 10
    data = ticks([quiet, [2.0] * 25, [4.2, 9.0]])
    loose = compute_session(data, 0.01, OPEN, CLOSE, config=FootprintConfig(big_print_sd=1.0))
    assert 4.2 in loose.big_prints["size"].tolist()
    # a one-minute window: minute 2 looks back on minute 1 only, whose sizes never vary
    short = compute_session(data, 0.01, OPEN, CLOSE, config=FootprintConfig(big_print_minutes=1))
    assert short.big_prints["size"].tolist() == [4.2, 9.0]
    assert short.big_prints["threshold"].tolist() == [2.0, 2.0]


def test_identical_sizes_make_any_larger_print_big_and_an_equal_one_not() -> None:
    frames = compute_session(ticks([[5.0] * 30, [5.0, 5.0001]]), 0.01, OPEN, CLOSE)
    assert frames.big_prints["size"].tolist() == [5.0001]


def test_too_little_history_judges_nothing() -> None:
    frames = compute_session(ticks([[1.0] * 5, [100.0]]), 0.01, OPEN, CLOSE)
    assert frames.big_prints.empty


def test_sides_are_the_profiles() -> None:
    quiet = [1.0, 2.0, 3.0, 2.0] * 10
    frames = compute_session(ticks([quiet, [40.0]], side=-1.0), 0.01, OPEN, CLOSE)
    assert frames.big_prints["side"].tolist() == ["sell"]
    bare = ticks([quiet, [40.0]])  # tick rule: 10.00 again after the downtick 10.02 → 10.00
    assert compute_session(bare, 0.01, OPEN, CLOSE).big_prints["side"].tolist() == ["sell"]


def test_a_later_window_judges_against_the_history_it_is_given() -> None:
    quiet = [1.0, 2.0, 3.0, 2.0] * 10
    whole = compute_session(ticks([quiet, quiet, [2.0, 30.0]]), 0.01, OPEN, CLOSE)
    minute_two = ticks([[], [], [2.0, 30.0]])
    history = SizeHistory(
        whole.bar_stats.trades[:2], whole.bar_stats.mean_size[:2], whole.bar_stats.size_sd[:2]
    )
    tail = compute_session(
        minute_two,
        0.01,
        OPEN + pd.Timedelta(minutes=2),
        CLOSE,
        history=PrintHistory(sizes=history),
    )
    assert tail.big_prints.drop(columns="ts").equals(whole.big_prints.drop(columns="ts"))
    assert len(tail.big_prints) == 1
