"""Aggressive-flow score and direction: ONE formula for alerts, strategies and trading.

The system marketflow replaces had four aggression formulas. This keeps the one its
trading strategy used (docs/semantics.md) because it is the one that gates
orders and it needs no volume ratio: its engine indicator compared the volume of
the current, still-empty minute with the hourly mean, so its volume term was almost
always zero. Its labels are kept (intensity, ``is_aggressive``).

Inputs per symbol, from the recent ``order_flow`` buckets (newest last):
- ``buy_pressure`` / ``sell_pressure`` of the newest bucket (0–100, 50/50 when empty);
- ``cvd_momentum`` = CVD(newest) − CVD(oldest) over the last five buckets.

Score (0–100, capped):
- |cvd_momentum| ≥ 1000 ⇒ +40, ≥ 500 ⇒ +20;
- buy or sell pressure ≥ 70 ⇒ +40, else ≥ 60 ⇒ +20;
- both pressures > 0 and max(b/s, s/b) ≥ 2.0 ⇒ +20, ≥ 1.5 ⇒ +10.
Direction: BUY if buy ≥ 70 or cvd_momentum > 500; else SELL if sell ≥ 70 or
cvd_momentum < −500; else NEUTRAL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FLOW_WINDOW_BUCKETS = 5

BUY, SELL, NEUTRAL = "BUY", "SELL", "NEUTRAL"
# direction codes in the vectorised form
DIR_NEUTRAL, DIR_BUY, DIR_SELL = 0, 1, -1
DIRECTION_NAMES = {DIR_NEUTRAL: NEUTRAL, DIR_BUY: BUY, DIR_SELL: SELL}

STRONG_SCORE = 70.0
MODERATE_SCORE = 50.0
AGGRESSIVE_SCORE = 50.0  # ``is_aggressive`` threshold


@dataclass(frozen=True)
class Aggression:
    score: float
    direction: str  # BUY | SELL | NEUTRAL
    intensity: str  # STRONG | MODERATE | WEAK
    is_aggressive: bool


def aggression_scores(
    buy_pressure: npt.ArrayLike, sell_pressure: npt.ArrayLike, cvd_momentum: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Score (0–100) and direction code (1 buy, −1 sell, 0 neutral) for many symbols.

    NaN pressures count as 50 (no flow) and a NaN momentum as 0.
    """
    b = np.nan_to_num(np.asarray(buy_pressure, dtype=np.float64), nan=50.0)
    s = np.nan_to_num(np.asarray(sell_pressure, dtype=np.float64), nan=50.0)
    m = np.nan_to_num(np.asarray(cvd_momentum, dtype=np.float64), nan=0.0)
    am = np.abs(m)
    score = np.where(am >= 1000, 40.0, np.where(am >= 500, 20.0, 0.0))
    top = np.maximum(b, s)
    score += np.where(top >= 70, 40.0, np.where(top >= 60, 20.0, 0.0))
    both = (b > 0) & (s > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(both, np.maximum(b / np.where(both, s, 1), s / np.where(both, b, 1)), 0)
    score += np.where(ratio >= 2.0, 20.0, np.where(ratio >= 1.5, 10.0, 0.0))
    score = np.minimum(score, 100.0)
    direction = np.where(
        (b >= 70) | (m > 500), DIR_BUY, np.where((s >= 70) | (m < -500), DIR_SELL, DIR_NEUTRAL)
    ).astype(np.int8)
    return score, direction


def intensity(score: float) -> str:
    if score >= STRONG_SCORE:
        return "STRONG"
    if score >= MODERATE_SCORE:
        return "MODERATE"
    return "WEAK"


def aggression(buy_pressure: float, sell_pressure: float, cvd_momentum: float) -> Aggression:
    """The score and labels for one symbol (see the module docstring)."""
    score, direction = aggression_scores([buy_pressure], [sell_pressure], [cvd_momentum])
    value = float(score[0])
    return Aggression(
        score=value,
        direction=DIRECTION_NAMES[int(direction[0])],
        intensity=intensity(value),
        is_aggressive=value >= AGGRESSIVE_SCORE,
    )


def cvd_momentum(cvd: npt.ArrayLike) -> float:
    """CVD(newest) − CVD(oldest) over the last five buckets (time order); 0 with < 2."""
    values = np.asarray(cvd, dtype=np.float64)[-FLOW_WINDOW_BUCKETS:]
    return float(values[-1] - values[0]) if len(values) >= 2 else 0.0
