"""Candle fallback (docs/semantics.md): volume spread over the bar's range and conserved, 60/40."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.candle_fallback import candle_profile, spread_bars
from analytics.profile import metrics_of


def bar(o: float, h: float, lo: float, c: float, v: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": [pd.Timestamp("2024-03-11 14:00", tz="UTC")],
            "open": [o],
            "high": [h],
            "low": [lo],
            "close": [c],
            "volume": [v],
        }
    )


def test_reference_v3_bullish_bar_conserves_volume() -> None:
    # original: 6 levels × 100 = 600 of 1000; DESIGN: 51 bins of 0.01 holding all 1000
    profile = candle_profile(bar(100.0, 100.5, 100.0, 100.4, 1000.0), 0.01)
    assert len(profile) == 51
    assert profile.price_level.iloc[0] == 100.0 and profile.price_level.iloc[-1] == 100.5
    assert profile.total_volume.sum() == pytest.approx(1000.0)
    assert profile.buy_volume.sum() == pytest.approx(600.0)
    assert profile.sell_volume.sum() == pytest.approx(400.0)
    assert (profile.trade_count == 0).all()
    m = metrics_of(profile.total_volume.to_numpy(), 10000, 0.01)
    # equal bins: POC at the middle (100.25); ties walk down first: 25 bins below,
    # then 10 above reach 36 × 1000/51 = 705.9 >= 700
    assert (m.poc, m.val, m.vah) == (100.25, 100.0, 100.35)


def test_reference_v3_bearish_bar() -> None:
    profile = candle_profile(bar(100.0, 100.05, 99.98, 99.99, 5000.0), 0.01)
    assert profile.price_level.tolist() == [
        99.98,
        99.99,
        100.0,
        100.01,
        100.02,
        100.03,
        100.04,
        100.05,
    ]
    assert profile.total_volume.sum() == pytest.approx(5000.0)
    buy, sell = profile.buy_volume.sum(), profile.sell_volume.sum()
    assert (buy, sell) == pytest.approx((2000.0, 3000.0))  # pressure 40/60, delta −1000


def test_doji_is_bullish_and_bad_bars_are_counted() -> None:
    # every bar is split 60/40 by colour; close == open is the up colour (bullish ⇔
    # close ≥ open): no third, 50/50 rule
    profile = candle_profile(bar(10.0, 10.0, 10.0, 10.0, 10.0), 0.5)
    assert profile[["total_volume", "buy_volume", "sell_volume"]].iloc[0].tolist() == [10, 6, 4]
    spread = spread_bars(
        np.array([1.0, 1.0, 1.0, np.nan, 1.0]),
        np.array([2.0, 0.5, 2.0, 2.0, 2.0]),
        np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
        np.array([1.5, 1.0, 1.5, 1.5, 1.5]),
        np.array([10.0, 5.0, -1.0, 3.0, 0.0]),
        0.5,
    )
    # high < low, negative volume, NaN: rejected; a zero-volume bar is just empty
    assert spread.rejected == 3
    assert set(spread.bar.tolist()) == {0}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1000, 1100),
            st.integers(0, 80),
            st.integers(0, 80),
            st.integers(0, 80),
            st.floats(0.0, 1e7, allow_nan=False, allow_subnormal=False),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([0.01, 0.05, 0.25, 1.0]),
)
def test_fallback_conserves_every_bar(bars, row_size) -> None:
    low = np.array([b[0] * 0.1 for b in bars])
    high = low + np.array([b[1] * 0.1 for b in bars])
    open_ = low + np.array([min(b[2], b[1]) * 0.1 for b in bars])
    close = low + np.array([min(b[3], b[1]) * 0.1 for b in bars])
    volume = np.array([b[4] for b in bars])
    spread = spread_bars(open_, high, low, close, volume, row_size)
    assert spread.rejected == 0
    per_bar = np.bincount(spread.bar, weights=spread.volume, minlength=len(bars))
    assert np.allclose(per_bar, volume, rtol=1e-12, atol=1e-9)
    buy = np.bincount(spread.bar, weights=spread.buy_volume, minlength=len(bars))
    share = np.where(close >= open_, 0.6, 0.4)
    assert np.allclose(buy, volume * share, rtol=1e-9, atol=1e-6)
    assert (spread.volume >= 0).all()
