"""Market state: a rule cascade over the session profile (docs/semantics.md).

Momentum is in *real percent* (1.5 means a 1.5 %
move over 60 minutes) and run against the session profile (the caller passes the
session POC/VAH/VAL, not the last one-minute micro-profile).

The system marketflow replaces scored momentum as ``10 × %-change ± 20 for any 3-bar
run``, so a 0.15 % drift or any three rising closes crossed the 1.5 threshold and almost
every symbol read IMBALANCE. Here momentum is just the percent change of the closes of
the last 60 minutes, ``(last − first) / first × 100``; the ±20 run bonus is dropped because
in percent units it would be a 2 % move granted for any three rising bars — the same bug.

Cascade (each later rule may overwrite the state; confidence points accumulate):
1. distance = |price − POC| / POC × 100: < 1.5 ⇒ BALANCE +40; elif < 2.5 ⇒ +20 (state
   unchanged); else +30.
2. inside the value area (VAL ≤ price ≤ VAH) and distance < 2.0 ⇒ BALANCE +30; above VAH
   ⇒ IMBALANCE_UP +30; below VAL ⇒ IMBALANCE_DOWN +30.
3. |momentum| > 1.5 % ⇒ IMBALANCE_UP/DOWN by its sign +20; elif |momentum| < 0.5 % ⇒
   BALANCE +10.
4. |buy_pressure − sell_pressure| > 15 ⇒ IMBALANCE_UP/DOWN by its sign +10.
5. no rule set a state ⇒ BALANCE with confidence 50.
Confidence is clamped to 0–100. No price or no profile ⇒ UNKNOWN, confidence 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.indicators import first_per_group, last_per_group
from core.contracts import MarketStateName

POC_BALANCE_PCT = 1.5
POC_NEAR_PCT = 2.5
VALUE_AREA_BALANCE_PCT = 2.0
MOMENTUM_IMBALANCE_PCT = 1.5
MOMENTUM_FLAT_PCT = 0.5
PRESSURE_IMBALANCE = 15.0
MOMENTUM_WINDOW_MINUTES = 60

# state codes of the vectorised form
UNKNOWN, BALANCE, IMBALANCE_UP, IMBALANCE_DOWN = 0, 1, 2, 3
STATE_NAMES: dict[int, MarketStateName] = {
    UNKNOWN: MarketStateName.UNKNOWN,
    BALANCE: MarketStateName.BALANCE,
    IMBALANCE_UP: MarketStateName.IMBALANCE_UP,
    IMBALANCE_DOWN: MarketStateName.IMBALANCE_DOWN,
}


@dataclass(frozen=True)
class MarketState:
    state: MarketStateName
    confidence: float
    distance_from_poc_pct: float
    in_value_area: bool
    momentum_pct: float
    pressure_imbalance: float


def momentum_pct(closes: Sequence[float]) -> float:
    """Percent change from the first to the last close (time order); 0 with < 2 closes."""
    c = np.asarray(closes, dtype=np.float64)
    if len(c) < 2 or not c[0]:
        return 0.0
    return float((c[-1] - c[0]) / c[0] * 100.0)


def momentum_pct_grouped(closes: npt.ArrayLike, offsets: npt.ArrayLike) -> npt.NDArray:
    """``momentum_pct`` per group of closes (see ``analytics.indicators`` for offsets)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    c = np.asarray(closes, dtype=np.float64)
    first = first_per_group(c, offsets)
    last = last_per_group(c, offsets)
    enough = np.diff(offsets) >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = (last - first) / first * 100.0
    return np.where(enough & np.isfinite(pct), pct, 0.0)


def detect_states(
    price: npt.ArrayLike,
    poc: npt.ArrayLike,
    vah: npt.ArrayLike,
    val: npt.ArrayLike,
    momentum: npt.ArrayLike,
    buy_pressure: npt.ArrayLike,
    sell_pressure: npt.ArrayLike,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The cascade for many symbols: (state codes, confidence 0–100, distance % from POC).

    NaN price, POC, VAH or VAL (or a non-positive POC) ⇒ UNKNOWN with confidence 0.
    NaN pressures count as 50/50.
    """
    p = np.asarray(price, dtype=np.float64)
    poc_ = np.asarray(poc, dtype=np.float64)
    hi = np.asarray(vah, dtype=np.float64)
    lo = np.asarray(val, dtype=np.float64)
    mom = np.nan_to_num(np.asarray(momentum, dtype=np.float64), nan=0.0)
    b = np.nan_to_num(np.asarray(buy_pressure, dtype=np.float64), nan=50.0)
    s = np.nan_to_num(np.asarray(sell_pressure, dtype=np.float64), nan=50.0)

    known = np.isfinite(p) & np.isfinite(poc_) & np.isfinite(hi) & np.isfinite(lo) & (poc_ > 0)
    safe_poc = np.where(known, poc_, 1.0)
    distance = np.where(known, np.abs(p - safe_poc) / safe_poc * 100.0, np.nan)
    d = np.nan_to_num(distance, nan=np.inf)

    state = np.full(p.shape, UNKNOWN, dtype=np.int8)
    conf = np.zeros(p.shape, dtype=np.float64)

    # 1. distance from POC
    near = d < POC_BALANCE_PCT
    state[near] = BALANCE
    conf += np.where(near, 40.0, np.where(d < POC_NEAR_PCT, 20.0, 30.0))

    # 2. value area
    inside = (lo <= p) & (p <= hi)
    va_balance = inside & (d < VALUE_AREA_BALANCE_PCT)
    above = ~inside & (p > hi)
    below = ~inside & (p < lo)
    state[va_balance] = BALANCE
    state[above] = IMBALANCE_UP
    state[below] = IMBALANCE_DOWN
    conf += np.where(va_balance | above | below, 30.0, 0.0)

    # 3. momentum in real percent
    strong = np.abs(mom) > MOMENTUM_IMBALANCE_PCT
    flat = ~strong & (np.abs(mom) < MOMENTUM_FLAT_PCT)
    state[strong & (mom > 0)] = IMBALANCE_UP
    state[strong & (mom <= 0)] = IMBALANCE_DOWN
    state[flat] = BALANCE
    conf += np.where(strong, 20.0, np.where(flat, 10.0, 0.0))

    # 4. buy/sell pressure imbalance
    imbalance = b - s
    pushed = np.abs(imbalance) > PRESSURE_IMBALANCE
    state[pushed & (imbalance > 0)] = IMBALANCE_UP
    state[pushed & (imbalance <= 0)] = IMBALANCE_DOWN
    conf += np.where(pushed, 10.0, 0.0)

    # 5. nothing decided
    undecided = state == UNKNOWN
    state[undecided] = BALANCE
    conf[undecided] = 50.0

    conf = np.clip(conf, 0.0, 100.0)
    state[~known] = UNKNOWN
    conf[~known] = 0.0
    return state, conf, distance


def detect_state(
    closes: Sequence[float],
    poc: float | None,
    vah: float | None,
    val: float | None,
    buy_pressure: float | None = None,
    sell_pressure: float | None = None,
) -> MarketState:
    """The state of one symbol from its closes of the last 60 minutes (time order, the
    last is the current price) and its session profile."""
    price = float(closes[-1]) if len(closes) else float("nan")
    mom = momentum_pct(closes)

    def f(x: float | None) -> float:
        return float("nan") if x is None else float(x)

    b, s = f(buy_pressure), f(sell_pressure)
    codes, conf, dist = detect_states([price], [f(poc)], [f(vah)], [f(val)], [mom], [b], [s])
    inside = bool(np.isfinite(price) and f(val) <= price <= f(vah))
    b = 50.0 if np.isnan(b) else b
    s = 50.0 if np.isnan(s) else s
    return MarketState(
        state=STATE_NAMES[int(codes[0])],
        confidence=float(conf[0]),
        distance_from_poc_pct=float(dist[0]),
        in_value_area=inside,
        momentum_pct=mom,
        pressure_imbalance=b - s,
    )
