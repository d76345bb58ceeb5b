"""Run metrics as pure functions of numbers: trades' P&L, an equity curve, daily returns.

- win rate: trades with P&L > 0 over all trades;
- profit factor: gross profit / gross loss (None without a losing trade);
- max drawdown: the largest fall from a running peak of the equity curve, in money and,
  separately, in percent of that peak (the two can come from different falls);
- Sharpe: mean / standard deviation (ddof 1) of daily returns × √(periods per year);
- Sortino: mean daily return / downside deviation (root mean square of the negative
  returns, zeros counted for the others) × √(periods per year);
- exposure: the share of the curve's minutes with at least one open position.
None where a ratio has no denominator (no trades, one day, no losing day).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
TRADING_DAYS = 252  # a year of exchange sessions; 365 for markets that never close


def win_rate(pnl: Sequence[float]) -> float | None:
    return sum(1 for p in pnl if p > 0) / len(pnl) if len(pnl) else None


def profit_factor(pnl: Sequence[float]) -> float | None:
    gain = sum(p for p in pnl if p > 0)
    loss = -sum(p for p in pnl if p < 0)
    return gain / loss if loss > 0 else None


def max_drawdown(equity: Sequence[float] | F) -> tuple[float, float]:
    """(largest fall from a peak in money, largest fall in % of its peak); (0, 0) when flat."""
    eq = np.asarray(equity, dtype=np.float64)
    if not len(eq):
        return 0.0, 0.0
    peak = np.maximum.accumulate(eq)
    fall = peak - eq
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(peak > 0, fall / peak * 100.0, 0.0)
    return float(fall.max()), float(pct.max())


def sharpe(daily_returns: Sequence[float] | F, periods: int = TRADING_DAYS) -> float | None:
    r = np.asarray(daily_returns, dtype=np.float64)
    if len(r) < 2:
        return None
    sd = float(r.std(ddof=1))
    return float(r.mean()) / sd * math.sqrt(periods) if sd > 0 else None


def sortino(daily_returns: Sequence[float] | F, periods: int = TRADING_DAYS) -> float | None:
    r = np.asarray(daily_returns, dtype=np.float64)
    if len(r) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(r.mean()) / downside * math.sqrt(periods) if downside > 0 else None


def daily_returns(day_start_equity: Sequence[float], day_end_equity: Sequence[float]) -> F:
    start = np.asarray(day_start_equity, dtype=np.float64)
    end = np.asarray(day_end_equity, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(start > 0, end / start - 1.0, 0.0)


def summary(
    pnl: Sequence[float],
    holding_minutes: Sequence[float],
    exit_reasons: Sequence[str],
    equity: Sequence[float] | F,
    daily: Sequence[float] | F,
    exposed_minutes: int,
    periods: int = TRADING_DAYS,
) -> dict[str, Any]:
    """Every metric of one run (or of one symbol's part of it), JSON-ready."""
    n = len(pnl)
    dd, dd_pct = max_drawdown(equity)
    minutes = len(equity)
    return {
        "trades": n,
        "wins": sum(1 for p in pnl if p > 0),
        "win_rate": win_rate(pnl),
        "total_pnl": float(sum(pnl)),
        "avg_pnl": float(sum(pnl) / n) if n else None,
        "profit_factor": profit_factor(pnl),
        "max_drawdown": dd,
        "max_drawdown_pct": dd_pct,
        "sharpe": sharpe(daily, periods),
        "sortino": sortino(daily, periods),
        "exposure": exposed_minutes / minutes if minutes else None,
        "avg_holding_minutes": float(np.mean(holding_minutes)) if n else None,
        "exit_reasons": dict(sorted(Counter(exit_reasons).items())),
    }
