"""The rule vocabulary of ``rules`` strategies (metrics, refs, operators) and where one
condition holds across the universe; the footprint terms (stacked imbalances, session VWAP
bands, the initial balance, big prints) are named in ``strategies.footprint``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.aggressive_flow import DIRECTION_NAMES
from analytics.market_state import STATE_NAMES
from strategies.footprint import (
    BAND_REFS,
    BIG_PRINT_SIDES,
    BUY,
    IB_BREAK,
    IB_REFS,
    SELL,
    SIDE_NAMES,
    STACK_METRICS,
    Footprint,
)
from strategies.model import Condition
from strategies.snapshot import Metrics, json_number

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
    **STACK_METRICS,
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
    "session_vwap": "session_vwap",
    **{name: name for name in BAND_REFS},
    **{name: name for name in IB_REFS},
}
FOOTPRINT_TEXT: dict[str, dict[str, Any]] = {"ib_break": IB_BREAK, "big_print": BIG_PRINT_SIDES}


def _footprint(metrics: Metrics) -> Footprint:
    return metrics.footprint or Footprint.empty(len(metrics.price))


def _numeric(metrics: Metrics, name: str, cond: Condition | None = None) -> npt.NDArray[np.float64]:
    if name == "sma":
        assert cond is not None and cond.period is not None
        return metrics.sma[cond.period]
    if name in ("stack_buy", "stack_sell"):
        return np.asarray(getattr(_footprint(metrics), name), dtype=np.float64)
    if name == "session_vwap":
        return _footprint(metrics).vwap
    if name in BAND_REFS:
        assert cond is not None and cond.k is not None
        fp = _footprint(metrics)
        return fp.vwap + BAND_REFS[name] * cond.k * fp.vwap_sd
    if name in IB_REFS:
        values = getattr(metrics, name)
        return values if len(values) else np.full(len(metrics.price), np.nan)
    return np.asarray(getattr(metrics, name), dtype=np.float64)


def ib_position(metrics: Metrics) -> npt.NDArray[np.float64]:
    """Per symbol: 1 price above the IB high, −1 below the IB low, 0 inside, NaN unknown."""
    high, low = _numeric(metrics, "ib_high"), _numeric(metrics, "ib_low")
    price = metrics.price
    with np.errstate(invalid="ignore"):
        pos = np.where(price > high, 1.0, np.where(price < low, -1.0, 0.0))
    return np.where(np.isfinite(price) & np.isfinite(high) & np.isfinite(low), pos, np.nan)


def big_print_age(metrics: Metrics, side: str) -> npt.NDArray[np.float64]:
    """Seconds since the newest big print of ``side`` (BUY, SELL or ANY), NaN when none."""
    ts = _footprint(metrics).big_ts
    if side == "BUY":
        newest = ts[:, BUY]
    elif side == "SELL":
        newest = ts[:, SELL]
    else:
        newest = np.full(len(ts), np.nan)
        finite = np.isfinite(ts).any(axis=1)
        newest[finite] = np.nanmax(ts[finite], axis=1)
    return metrics.asof - newest


def _footprint_text(cond: Condition, metrics: Metrics) -> npt.NDArray[np.bool_]:
    if cond.metric == "ib_break":
        pos = ib_position(metrics)
        known = np.isfinite(pos)
        with np.errstate(invalid="ignore"):
            hit = np.asarray(OPS[cond.op](pos, IB_BREAK[str(cond.value)]), dtype=bool)
        return hit & known  # no IB (or no price): neither == nor != holds
    assert cond.seconds is not None
    age = big_print_age(metrics, str(cond.value))
    with np.errstate(invalid="ignore"):
        recent = np.isfinite(age) & (age < cond.seconds)
    return recent if cond.op == "==" else ~recent


def condition_mask(
    cond: Condition,
    metrics: Metrics,
    state: npt.NDArray[np.int8],
    confidence: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Where one condition holds (``state``/``confidence``: the engine's current market
    state, refreshed on its own cadence)."""
    op = OPS[cond.op]
    if cond.metric in FOOTPRINT_TEXT:
        return _footprint_text(cond, metrics)
    if cond.metric in TEXT_METRICS:
        codes = state if cond.metric == "market_state" else metrics.direction
        return np.asarray(op(codes, TEXT_METRICS[cond.metric][str(cond.value)]), dtype=bool)
    left = (
        np.asarray(confidence, dtype=np.float64)
        if cond.metric == "confidence"
        else _numeric(metrics, NUMERIC_METRICS[cond.metric])
    )
    right = (
        _numeric(metrics, "sma" if cond.ref == "sma" else REFS[cond.ref], cond)
        if cond.ref is not None
        else np.float64(cond.value)
    )
    with np.errstate(invalid="ignore"):
        out = np.asarray(op(left, right), dtype=bool)
    return out & np.isfinite(left) & np.isfinite(right)  # a missing value is never true


def footprint_details(terms: set[str], metrics: Metrics, i: int) -> dict[str, Any]:
    """What a signal's details say about the footprint terms its strategy uses."""
    out: dict[str, Any] = {}
    fp = _footprint(metrics)
    if terms & {"session_vwap", *BAND_REFS}:
        out["session_vwap"] = json_number(fp.vwap[i])
        out["vwap_sd"] = json_number(fp.vwap_sd[i])
    if terms & STACK_METRICS.keys():
        out["stacked_buy_imbalance"] = int(fp.stack_buy[i])
        out["stacked_sell_imbalance"] = int(fp.stack_sell[i])
    if terms & {"ib_break", *IB_REFS}:
        out["ib_high"] = json_number(_numeric(metrics, "ib_high")[i])
        out["ib_low"] = json_number(_numeric(metrics, "ib_low")[i])
    if "big_print" in terms:
        side = fp.last_big_print(i)
        out["big_print"] = (
            None
            if side is None
            else {
                "side": SIDE_NAMES[side],
                "price": float(fp.big_price[i, side]),
                "size": float(fp.big_size[i, side]),
                "age_s": round(float(metrics.asof[i] - fp.big_ts[i, side]), 3),
            }
        )
    return out
