"""The rule vocabulary of ``rules`` strategies (metrics, refs, operators) and where one
condition holds across the universe."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.aggressive_flow import DIRECTION_NAMES
from analytics.market_state import STATE_NAMES
from strategies.model import Condition
from strategies.snapshot import Metrics

OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
NUMERIC_METRICS = {
    "price": "price",
    "aggression_score": "aggression",
    "cvd_slope": "cvd_slope",
    "cvd_momentum": "cvd_momentum",
    "buy_pressure": "buy_pressure",
    "sell_pressure": "sell_pressure",
    "momentum_pct": "momentum_pct",
    "confidence": "confidence",
    "atr": "atr",
}
TEXT_METRICS = {
    "market_state": {name.value: code for code, name in STATE_NAMES.items()},
    "flow_direction": {name: code for code, name in DIRECTION_NAMES.items()},
}
REFS = {
    "vwap": "vwap",
    "poc": "poc",
    "vah": "vah",
    "val": "val",
    "composite_poc": "composite_poc",
    "composite_vah": "composite_vah",
    "composite_val": "composite_val",
}


def _numeric(metrics: Metrics, name: str, period: int | None = None) -> npt.NDArray[np.float64]:
    if name == "sma":
        assert period is not None
        return metrics.sma[period]
    return np.asarray(getattr(metrics, name), dtype=np.float64)


def condition_mask(
    cond: Condition,
    metrics: Metrics,
    state: npt.NDArray[np.int8],
    confidence: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Where one condition holds (``state``/``confidence``: the engine's current market
    state, refreshed on its own cadence)."""
    op = OPS[cond.op]
    if cond.metric in TEXT_METRICS:
        codes = state if cond.metric == "market_state" else metrics.direction
        return np.asarray(op(codes, TEXT_METRICS[cond.metric][str(cond.value)]), dtype=bool)
    left = (
        np.asarray(confidence, dtype=np.float64)
        if cond.metric == "confidence"
        else _numeric(metrics, NUMERIC_METRICS[cond.metric])
    )
    right = (
        _numeric(metrics, "sma" if cond.ref == "sma" else REFS[cond.ref], cond.period)
        if cond.ref is not None
        else np.float64(cond.value)
    )
    with np.errstate(invalid="ignore"):
        out = np.asarray(op(left, right), dtype=bool)
    return out & np.isfinite(left) & np.isfinite(right)  # a missing value is never true
