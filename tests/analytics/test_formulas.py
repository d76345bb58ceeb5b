"""Pure engine formulas against docs/semantics.md and worked examples (V4, V5, V7, V8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.aggressive_flow import aggression, aggression_scores, cvd_momentum
from analytics.indicators import (
    atr,
    atr_grouped,
    slope,
    slope_grouped,
    sma,
    sma_grouped,
    true_ranges,
    vwap,
    vwap_grouped,
)
from analytics.market_state import detect_state, detect_states, momentum_pct_grouped
from analytics.risk import bracket_levels, position_size, round_cent
from core.contracts import MarketStateName, Side

V8 = [
    (101, 99, 100),
    (102, 100, 101.5),
    (103, 101, 102),
    (102.5, 100.5, 101),
    (101.5, 99.5, 100),
    (101, 99, 100.5),
    (102, 100, 101.8),
    (103, 101.2, 102.5),
    (104, 102, 103.6),
    (103.5, 101.5, 102),
    (102, 100.5, 101),
    (101.5, 100, 100.8),
    (102.2, 100.6, 101.9),
    (103, 101.4, 102.7),
]


def test_v8_atr_in_time_order():
    h, lo, c = zip(*V8, strict=True)
    assert atr(h, lo, c) == pytest.approx(1.853846, abs=1e-6)
    assert len(true_ranges(h, lo, c)) == 13
    # newest-first ordering would give the wrong 2.207692
    assert atr(h[::-1], lo[::-1], c[::-1]) == pytest.approx(2.207692, abs=1e-6)


def test_atr_uses_last_14_bars_and_needs_14():
    h, lo, c = zip(*V8, strict=True)
    assert math.isnan(atr(h[:13], lo[:13], c[:13]))
    longer = [(200, 100, 150), *V8]  # an older wild bar is outside the window
    h2, l2, c2 = zip(*longer, strict=True)
    assert atr(h2, l2, c2) == pytest.approx(1.853846, abs=1e-6)


def test_grouped_indicators_match_scalar():
    h, lo, c = (np.array(x, dtype=float) for x in zip(*V8, strict=True))
    rng = np.random.default_rng(1)
    g2 = 100 + rng.normal(0, 1, 30).cumsum()
    H = np.concatenate([h, g2 + 0.5, h[:5]])
    L = np.concatenate([lo, g2 - 0.5, lo[:5]])
    C = np.concatenate([c, g2, c[:5]])
    V = np.concatenate([np.full(14, 10.0), rng.uniform(1, 5, 30), np.zeros(5)])
    offsets = np.array([0, 14, 44, 49])
    got = atr_grouped(H, L, C, offsets)
    assert got[0] == pytest.approx(1.853846, abs=1e-6)
    assert got[1] == pytest.approx(atr(H[14:44], L[14:44], C[14:44]))
    assert math.isnan(got[2])
    s = sma_grouped(C, offsets, 20)
    assert math.isnan(s[0]) and s[1] == pytest.approx(sma(C[14:44], 20))
    assert sma(c, 3) == pytest.approx((100.8 + 101.9 + 102.7) / 3)
    w = vwap_grouped(C, V, offsets)
    assert w[1] == pytest.approx(vwap(C[14:44], V[14:44]))
    assert math.isnan(w[2])  # no volume
    sl = slope_grouped(C, offsets)
    assert sl[1] == pytest.approx(slope(C[14:44]))
    assert slope([0, 100, 200, 300]) == pytest.approx(100.0)


def test_v4_states_with_percent_momentum():
    # 0.30 % from POC (+40 BALANCE), above VAH (+30 UP), momentum 0.30 % < 0.5 (+10 BALANCE),
    # pressure 60/40 (+10 UP) ⇒ IMBALANCE_UP 90 (10×% momentum would say 100)
    s = detect_state([100.00, 100.05, 100.10, 100.20, 100.30], 100.0, 100.20, 99.90, 60, 40)
    assert s.state is MarketStateName.IMBALANCE_UP
    assert s.confidence == 90
    assert s.distance_from_poc_pct == pytest.approx(0.30)
    assert s.momentum_pct == pytest.approx(0.30)
    # flat at POC inside the value area, cvd 2 ⇒ BALANCE 80 (unchanged by the fix)
    s = detect_state([100.00, 100.00, 100.01, 100.00], 100.0, 100.05, 99.95, 51, 49)
    assert (s.state, s.confidence) == (MarketStateName.BALANCE, 80)
    # below VAL, momentum −0.10 %: a 10×% "score" of −1.0 would leave IMBALANCE_DOWN 70; a
    # real −0.10 % move is flat (< 0.5 %) so the cascade ends in BALANCE 80
    s = detect_state([100.00, 99.95, 99.97, 99.90], 100.0, 100.05, 99.95, 45, 55)
    assert (s.state, s.confidence) == (MarketStateName.BALANCE, 80)
    assert s.momentum_pct == pytest.approx(-0.10)


def test_state_cascade_branches():
    # a real 2 % rally 3 % above POC and above VAH ⇒ +30 +30 +20 ⇒ IMBALANCE_UP 80
    s = detect_state([100.0, 102.0, 103.0], 100.0, 100.5, 99.5)
    assert (s.state, s.confidence) == (MarketStateName.IMBALANCE_UP, 80)
    # 2 % below POC, inside a wide VA but not < 2.0 from POC, momentum 1 % (neither rule),
    # no pressure ⇒ no rule set a state ⇒ BALANCE 50
    s = detect_state([99.0, 99.99], 102.04, 103.0, 99.0)
    assert (s.state, s.confidence) == (MarketStateName.BALANCE, 50)
    # a sell-side push overrides
    s = detect_state([100.0, 100.0], 100.0, 100.5, 99.5, 30, 70)
    assert (s.state, s.confidence) == (MarketStateName.IMBALANCE_DOWN, 90)
    # no profile or no price ⇒ UNKNOWN 0
    assert detect_state([100.0], None, None, None).state is MarketStateName.UNKNOWN
    assert detect_state([], 100.0, 101.0, 99.0).confidence == 0


def test_states_vectorised_equal_scalar():
    rng = np.random.default_rng(5)
    n = 200
    closes = [100 + rng.normal(0, 1.5, rng.integers(1, 8)).cumsum() for _ in range(n)]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in closes])])
    flat = np.concatenate(closes)
    poc = rng.uniform(97, 103, n)
    vah, val = poc + rng.uniform(0, 2, n), poc - rng.uniform(0, 2, n)
    b = rng.uniform(0, 100, n)
    codes, conf, _ = detect_states(
        [c[-1] for c in closes], poc, vah, val, momentum_pct_grouped(flat, offsets), b, 100 - b
    )
    from analytics.market_state import STATE_NAMES

    for i in range(n):
        one = detect_state(closes[i], poc[i], vah[i], val[i], b[i], 100 - b[i])
        assert (STATE_NAMES[int(codes[i])], conf[i]) == (one.state, one.confidence)


@pytest.mark.parametrize(
    ("buy", "sell", "mom", "score", "direction"),
    [
        (75, 25, 1200, 100, "BUY"),
        (62, 38, 600, 50, "BUY"),
        (58.7, 41.3, 200, 0, "NEUTRAL"),
        (30, 70, -400, 60, "SELL"),
    ],
)
def test_v5_aggression(buy, sell, mom, score, direction):
    a = aggression(buy, sell, mom)
    assert (a.score, a.direction) == (score, direction)


def test_aggression_labels_and_momentum():
    a = aggression(75, 25, 1200)
    assert a.intensity == "STRONG" and a.is_aggressive
    assert aggression(50, 50, 0).intensity == "WEAK"
    assert cvd_momentum([0, 10, 20, 30, 40, 1040]) == 1030  # last five buckets only
    assert cvd_momentum([5]) == 0
    scores, dirs = aggression_scores([np.nan, 100], [np.nan, 0], [np.nan, -600])
    assert scores.tolist() == [0.0, 60.0]  # 100/0 has no ratio term; |−600| ⇒ +20
    assert dirs.tolist() == [0, 1]


@given(
    st.floats(0, 100),
    st.floats(-5000, 5000),
)
def test_aggression_bounded(buy, mom):
    a = aggression(buy, 100 - buy, mom)
    assert 0 <= a.score <= 100


def test_v7_levels_and_size():
    assert bracket_levels(Side.BUY, 100, 0.5, 1.5, 3.0) == (bracket_levels("buy", 100.0, 0.5))
    b = bracket_levels(Side.BUY, 100, 0.5, 1.5, 3.0)
    assert (b.stop, b.target) == (99.25, 101.50)
    s = bracket_levels(Side.SELL, 100, 0.5, 1.5, 3.0)
    assert (s.stop, s.target) == (100.75, 98.50)
    assert position_size(100_000, 1.0, 100, 99.25, 200_000) == 1333
    assert position_size(100_000, 1.0, 100, 99.25, 50_000) == 500  # capped by buying power


def test_levels_rounding_and_minimum_distance():
    b = bracket_levels(Side.BUY, 10.0, 0.001)  # ATR far below a cent
    assert b.stop == 9.99 and b.target == 10.01
    s = bracket_levels(Side.SELL, 10.0, 0.001)
    assert s.stop == 10.01 and s.target == 9.99
    b = bracket_levels(Side.BUY, 187.333, 0.4217, 1.5, 3.0)
    assert b.stop == round_cent(187.333 - 0.63255) == 186.70
    assert b.target == 188.60
    assert bracket_levels(Side.BUY, 100, float("nan")) is None
    assert bracket_levels(Side.BUY, 100, 0.0) is None
    assert bracket_levels(Side.BUY, 0.5, 1.0) is None  # stop would be below zero


def test_sizing_zero_means_no_order():
    assert position_size(1_000, 1.0, 500.0, 490.0, 100_000) == 1  # $10 / $10
    assert position_size(1_000, 1.0, 500.0, 480.0, 100_000) == 0  # never forced to 1
    assert position_size(100_000, 1.0, 500.0, 490.0, 300.0) == 0  # cannot afford a share
    assert position_size(100_000, 1.0, 100.0, 100.0, 1e6) == 0  # no stop distance
    assert position_size(100_000, 0.0, 100.0, 99.0, 1e6) == 0
    assert position_size(float("nan"), 1.0, 100.0, 99.0, 1e6) == 0
    assert position_size(10_000, 1.0, 10.0, 9.9, 1e6) == 1000  # exact, no float drift


def test_grouped_atr_is_nan_like_the_scalar_when_a_bar_is_bad():
    # a bad bar (NULL high read as NaN) inside the last 14 must not count as a zero true
    # range: that shrinks the ATR, tightens the stop and enlarges the position
    h, lo, c = (np.array(x, dtype=float) for x in zip(*V8, strict=True))
    h[5] = np.nan
    assert math.isnan(atr(h, lo, c))
    got = atr_grouped(
        np.concatenate([h, h]),
        np.concatenate([lo, lo]),
        np.concatenate([c, c]),
        np.array([0, 14, 28]),
    )
    assert np.isnan(got).all()
    # a bad bar older than the window does not matter, in either form
    h2 = np.concatenate([[np.nan], np.array([x[0] for x in V8], dtype=float)])
    l2 = np.concatenate([[99.0], lo])
    c2 = np.concatenate([[100.0], c])
    assert atr(h2, l2, c2) == pytest.approx(1.853846, abs=1e-6)
    assert atr_grouped(h2, l2, c2, np.array([0, 15]))[0] == pytest.approx(1.853846, abs=1e-6)


def test_a_bad_close_of_one_symbol_leaves_the_others_sma_alone():
    # grouped sums run over every symbol's rows at once: a NaN close of the first symbol
    # must make only that symbol's SMA (and ATR) missing, not every later symbol's
    close = np.array([100.0, np.nan, 102.0, 10.0, 11.0, 12.0])
    offsets = np.array([0, 3, 6])
    got = sma_grouped(close, offsets, 3)
    assert math.isnan(got[0])
    assert got[1] == pytest.approx(11.0)
    h, lo, c = (np.array(x, dtype=float) for x in zip(*V8, strict=True))
    bad_c = c.copy()
    bad_c[3] = np.nan
    both = atr_grouped(
        np.concatenate([h, h]),
        np.concatenate([lo, lo]),
        np.concatenate([bad_c, c]),
        np.array([0, 14, 28]),
    )
    assert math.isnan(both[0]) and both[1] == pytest.approx(1.853846, abs=1e-6)
