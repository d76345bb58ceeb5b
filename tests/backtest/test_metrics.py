"""Run metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from backtest.metrics import (
    daily_returns,
    max_drawdown,
    profit_factor,
    sharpe,
    sortino,
    summary,
    win_rate,
)

PNL = [100.0, -50.0, 30.0, -20.0]


def test_trade_counts_and_ratios() -> None:
    assert win_rate(PNL) == 0.5
    assert profit_factor(PNL) == pytest.approx(130 / 70)
    assert profit_factor([10.0, 5.0]) is None  # no losing trade: no denominator
    assert win_rate([]) is None


def test_drawdown_value_and_percent_can_come_from_different_falls() -> None:
    # falls: 120 -> 90 (30, 25 %), 130 -> 65 (65, 50 %)
    assert max_drawdown([100, 120, 90, 130, 65]) == (65.0, 50.0)
    # a small equity's deep fall vs a large equity's big fall
    value, pct = max_drawdown([10, 2, 1000, 900])
    assert value == 100.0 and pct == 80.0
    assert max_drawdown([100, 101, 102]) == (0.0, 0.0)


def test_sharpe_and_sortino_on_daily_returns() -> None:
    r = [0.01, -0.02, 0.03]
    mean = 0.02 / 3
    sd = math.sqrt(((0.01 - mean) ** 2 + (-0.02 - mean) ** 2 + (0.03 - mean) ** 2) / 2)
    assert sharpe(r) == pytest.approx(mean / sd * math.sqrt(252))
    assert sharpe(r) == pytest.approx(4.2053, abs=1e-4)
    downside = math.sqrt(0.02**2 / 3)
    assert sortino(r) == pytest.approx(mean / downside * math.sqrt(252))
    assert sortino(r, 365) == pytest.approx(mean / downside * math.sqrt(365))
    assert sharpe([0.01]) is None and sortino([0.01, 0.02]) is None  # no losing day


def test_daily_returns_and_summary() -> None:
    assert daily_returns([100, 110], [110, 99]).tolist() == pytest.approx([0.1, -0.1])
    s = summary(
        PNL,
        [10, 20, 30, 40],
        ["target", "stop", "target", "session_close"],
        [1000, 1100, 1050, 1080, 1060],
        [0.1, -0.05],
        exposed_minutes=2,
    )
    assert s["trades"] == 4 and s["wins"] == 2
    assert s["total_pnl"] == 60 and s["avg_pnl"] == 15
    assert s["max_drawdown"] == 50 and s["max_drawdown_pct"] == pytest.approx(50 / 1100 * 100)
    assert s["exposure"] == pytest.approx(2 / 5)
    assert s["avg_holding_minutes"] == 25
    assert s["exit_reasons"] == {"session_close": 1, "stop": 1, "target": 2}
