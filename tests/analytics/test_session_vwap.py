"""Session VWAP and bands (docs/semantics.md): through the end of each minute, computed
stably, and continued from a stored row exactly as computed in one go."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from analytics.bar_stats import BarStats
from analytics.pipeline import PrintHistory, compute_session
from analytics.session_vwap import VwapState, bands, running_vwap

OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")


def ticks(prints: list[tuple[int, float, float]]) -> pd.DataFrame:
    """(minute, price, size) prints."""
    return pd.DataFrame(
        {
            "ts": [
                OPEN + pd.Timedelta(minutes=m, milliseconds=k) for k, (m, _, _) in enumerate(prints)
            ],
            "price": [p for _, p, _ in prints],
            "size": [s for _, _, s in prints],
        }
    )


def exact(prints: list[tuple[int, float, float]]) -> tuple[float, float]:
    """VWAP and sd in exact rational arithmetic (sd through a float sqrt at the end)."""
    weight = sum(Fraction(s) for _, _, s in prints)
    mean = sum(Fraction(p) * Fraction(s) for _, p, s in prints) / weight
    var = sum(Fraction(s) * (Fraction(p) - mean) ** 2 for _, p, s in prints) / weight
    return float(mean), float(var) ** 0.5


def test_through_the_end_of_each_minute() -> None:
    prints = [(0, 10.0, 1.0), (0, 11.0, 3.0), (2, 12.0, 4.0)]
    frame = compute_session(ticks(prints), 0.01, OPEN, CLOSE).session_vwap
    assert frame["bucket"].tolist() == [OPEN + pd.Timedelta(minutes=m) for m in range(3)]
    # minute 0: (10 + 33) / 4; minute 1 (no prints) carries it; minute 2: (43 + 48) / 8
    assert frame["vwap"].tolist() == [10.75, 10.75, 11.375]
    assert frame["volume"].tolist() == [4.0, 4.0, 8.0]
    assert frame["sd"].iloc[0] == pytest.approx(exact(prints[:2])[1], rel=1e-15)
    assert frame["sd"].iloc[2] == pytest.approx(exact(prints)[1], rel=1e-15)
    assert frame["session_date"].iloc[0] == OPEN.date()


def test_rows_start_at_the_first_print() -> None:
    frame = compute_session(ticks([(3, 10.0, 1.0)]), 0.01, OPEN, CLOSE).session_vwap
    assert frame["bucket"].tolist() == [OPEN + pd.Timedelta(minutes=3)]
    assert (frame["vwap"].iloc[0], frame["sd"].iloc[0]) == (10.0, 0.0)


def test_stable_far_from_zero() -> None:
    """Prices near 1e8 that differ by a cent: a sum of p² would lose every digit of the
    variance; the shifted sums and the pairwise merge keep it."""
    rng = np.random.default_rng(5)
    n = 5_000
    prints = [
        (int(m), 1e8 + float(c) / 100, float(s))
        for m, c, s in zip(
            np.sort(rng.integers(0, 300, n)),
            rng.integers(0, 200, n),
            rng.integers(1, 50, n),
            strict=True,
        )
    ]
    frame = compute_session(ticks(prints), 0.01, OPEN, CLOSE).session_vwap
    mean, sd = exact(prints)
    assert frame["vwap"].iloc[-1] == pytest.approx(mean, abs=6e-8)  # a few ulps of 1e8
    assert frame["sd"].iloc[-1] == pytest.approx(sd, rel=1e-6)
    naive = np.sqrt(
        np.average(np.array([p for _, p, _ in prints]) ** 2, weights=[s for *_, s in prints])
        - mean**2
    )
    assert naive != pytest.approx(sd, rel=1e-3)  # what the unstable formula gives


def test_bands_are_k_standard_deviations() -> None:
    assert bands(100.0, 2.0, 1) == (98.0, 102.0)
    assert bands(100.0, 2.0, 3) == (94.0, 106.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        bands(100.0, 2.0, 0)


def test_continuing_from_a_stored_row_gives_the_same_floats() -> None:
    rng = np.random.default_rng(6)
    n = 400
    minute = np.sort(rng.integers(0, 40, n))
    prints = [
        (int(m), float(p), float(s))
        for m, p, s in zip(
            minute, 100 + np.cumsum(rng.normal(0, 0.05, n)), rng.exponential(3, n), strict=True
        )
    ]
    whole = compute_session(ticks(prints), 0.001, OPEN, CLOSE).session_vwap
    cut = 23
    first = whole[whole["bucket"] < OPEN + pd.Timedelta(minutes=cut)].iloc[-1]
    later = [p for p in prints if p[0] >= cut]
    state = VwapState(float(first.volume), float(first.vwap), float(first.sd))
    tail = compute_session(
        ticks(later),
        0.001,
        OPEN + pd.Timedelta(minutes=cut),
        CLOSE,
        history=PrintHistory(vwap=state),
    ).session_vwap
    expected = whole[whole["bucket"] >= OPEN + pd.Timedelta(minutes=cut)].reset_index(drop=True)
    assert tail["bucket"].tolist() == expected["bucket"].tolist()
    for column in ("vwap", "sd", "volume"):
        assert expected[column].to_numpy().tobytes() == tail[column].to_numpy().tobytes(), column


def test_running_vwap_without_prints_is_nan() -> None:
    stats = BarStats.from_sums(np.full((2, 10), np.nan), np.zeros(2, dtype=np.int64))
    volume, vwap, sd = running_vwap(stats)
    assert np.isnan(vwap).all() and np.isnan(sd).all() and np.isnan(volume).all()
