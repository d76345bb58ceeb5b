"""Equity per minute and per day from a run's trades.

The equity of minute ``m`` is taken at its end: the capital, plus the P&L of the trades that
exited in ``m`` or before, plus the open positions marked at the last close of ``m``. The
curve runs over the backtest's minutes and on until the last exit, so its last value is
the capital plus the total P&L.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backtest.fills import Candles
from backtest.metrics import daily_returns
from backtest.portfolio import Trade

F = npt.NDArray[np.float64]
MINUTE_S, DAY_S = 60.0, 86_400.0


@dataclass(frozen=True)
class Curve:
    ts: F  # minute starts, epoch seconds
    equity: F
    open_positions: npt.NDArray[np.int64]

    @property
    def exposed_minutes(self) -> int:
        return int((self.open_positions > 0).sum())


@dataclass(frozen=True)
class Daily:
    day: F  # UTC midnight, epoch seconds
    start_equity: F
    end_equity: F
    pnl: F
    returns: F
    trades: npt.NDArray[np.int64]  # trades that exited that day
    wins: npt.NDArray[np.int64]


def _minute(t: float) -> float:
    return float(np.floor(t / MINUTE_S) * MINUTE_S)


def equity_curve(
    trades: Sequence[Trade],
    candles: Mapping[int, Candles],
    start: float,
    end: float,
    capital: float,
) -> Curve:
    """Per-minute equity over [start, end), extended to the minute of the last exit."""
    last = end
    for tr in trades:
        c = candles[tr.signal.symbol_id]
        last = max(last, float(c.ts[tr.fill.exit.index]) + MINUTE_S)
    grid = np.arange(_minute(start), last, MINUTE_S, dtype=np.float64)
    n = len(grid)
    realised = np.zeros(n)
    marks = np.zeros(n)
    held = np.zeros(n, dtype=np.int64)
    for tr in trades:
        c = candles[tr.signal.symbol_id]
        a = int((c.ts[tr.fill.entry_index] - grid[0]) // MINUTE_S)
        b = int((c.ts[tr.fill.exit.index] - grid[0]) // MINUTE_S)
        a, b = max(a, 0), min(b, n - 1)
        realised[b] += tr.fill.pnl
        held[a : b + 1] += 1
        if b > a:
            k = np.searchsorted(c.ts, grid[a:b], side="right") - 1
            marks[a:b] += tr.sign * (c.close[k] - tr.fill.entry_price) * tr.fill.qty
    return Curve(ts=grid, equity=capital + np.cumsum(realised) + marks, open_positions=held)


def daily_stats(curve: Curve, trades: Sequence[Trade], capital: float) -> Daily:
    """One row per UTC day of the curve."""
    days = np.floor(curve.ts / DAY_S) * DAY_S
    unique, first = np.unique(days, return_index=True)
    last = np.concatenate([first[1:], [len(days)]]) - 1
    end_eq = curve.equity[last]
    start_eq = np.concatenate([[capital], end_eq[:-1]])
    exit_days = np.array([np.floor(tr.exit_ts / DAY_S) * DAY_S for tr in trades], dtype=np.float64)
    wins = np.array([tr.fill.pnl > 0 for tr in trades], dtype=bool)
    k = np.searchsorted(unique, exit_days)
    k = np.clip(k, 0, max(len(unique) - 1, 0))
    count = np.bincount(k, minlength=len(unique)).astype(np.int64)
    won = np.bincount(k, weights=wins.astype(np.float64), minlength=len(unique)).astype(np.int64)
    return Daily(
        day=unique,
        start_equity=start_eq,
        end_equity=end_eq,
        pnl=end_eq - start_eq,
        returns=daily_returns(start_eq, end_eq),
        trades=count[: len(unique)],
        wins=won[: len(unique)],
    )
