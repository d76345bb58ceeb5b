"""Which symbols a strategy runs on and where its condition holds now, each as a
``Candidate`` with its signal and (built on demand) its details."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.aggressive_flow import DIR_BUY, DIR_NEUTRAL, DIR_SELL, DIRECTION_NAMES
from analytics.market_state import BALANCE, IMBALANCE_DOWN, IMBALANCE_UP, STATE_NAMES
from strategies.model import (
    AUCTION_MARKET,
    PRICE_ABOVE_SMA,
    Candidate,
    Strategy,
    SymbolConfig,
)
from strategies.rules import condition_mask, footprint_details
from strategies.snapshot import Metrics, Universe, json_number

BALANCE_TRADE_SCORE = 80.0  # BALANCE entries need a score ≥ 80


def _param(strategy: Strategy, config: SymbolConfig | None, key: str, default: float) -> float:
    for source in ((config.parameters if config else {}), strategy.definition):
        value = source.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return float(default)


def _flag(strategy: Strategy, config: SymbolConfig | None, key: str) -> bool:
    for source in ((config.parameters if config else {}), strategy.definition):
        if isinstance(source.get(key), bool):
            return bool(source[key])
    return False


def target_mask(
    strategy: Strategy, universe: Universe, configs: Mapping[tuple[int, str], SymbolConfig]
) -> npt.NDArray[np.bool_]:
    """Which symbols a strategy runs on (see the package docstring)."""
    ids = universe.ids
    if strategy.symbols is not None:
        wanted = set(strategy.symbols)
        mask = np.array([s in wanted for s in universe.symbols], dtype=bool)
    else:
        mask = np.array(
            [(c := configs.get((int(i), strategy.name))) is not None and c.enabled for i in ids],
            dtype=bool,
        )
    disabled = np.array(
        [(c := configs.get((int(i), strategy.name))) is not None and not c.enabled for i in ids],
        dtype=bool,
    )
    return mask & ~disabled


def evaluate(
    strategy: Strategy,
    universe: Universe,
    metrics: Metrics,
    state: npt.NDArray[np.int8],
    confidence: npt.NDArray[np.float64],
    configs: Mapping[tuple[int, str], SymbolConfig],
    default_min_score: float,
    targets: npt.NDArray[np.bool_] | None = None,
) -> list[Candidate]:
    """The symbols where the strategy's condition holds now, with their signal
    (``targets``: the strategy's ``target_mask`` when the caller keeps it)."""
    if targets is None:
        targets = target_mask(strategy, universe, configs)
    mask = targets & np.isfinite(metrics.price)
    if not mask.any():
        return []
    if strategy.kind == AUCTION_MARKET:
        return _auction(
            strategy, universe, metrics, state, confidence, configs, mask, default_min_score
        )
    if strategy.kind == PRICE_ABOVE_SMA:
        sma = metrics.sma[strategy.period]
        with np.errstate(invalid="ignore"):
            mask &= np.isfinite(sma) & (metrics.price > sma)
        return [
            Candidate(
                int(i),
                strategy.signal,
                float(metrics.price[i]),
                lambda i=i: {  # type: ignore[misc]  # mypy cannot infer a default-argument lambda
                    "price": float(metrics.price[i]),
                    "sma": float(sma[i]),
                    "period": strategy.period,
                    **_levels(strategy, configs, universe, metrics, i),
                },
            )
            for i in np.flatnonzero(mask)
        ]
    holds = np.ones_like(mask)
    for cond in strategy.all:
        holds &= condition_mask(cond, metrics, state, confidence)
    if strategy.any:
        either = np.zeros_like(mask)
        for cond in strategy.any:
            either |= condition_mask(cond, metrics, state, confidence)
        holds &= either
    mask &= holds
    terms = strategy.footprint_terms()
    return [
        Candidate(
            int(i),
            strategy.signal,
            float(metrics.price[i]),
            lambda i=i: {  # type: ignore[misc]  # mypy cannot infer a default-argument lambda
                "price": float(metrics.price[i]),
                "market_state": STATE_NAMES[int(state[i])].value,
                "aggression_score": float(metrics.aggression[i]),
                "cvd_slope": json_number(metrics.cvd_slope[i]),
                **{f"sma{p}": json_number(metrics.sma[p][i]) for p in strategy.sma_periods()},
                **({"vwap": json_number(metrics.vwap[i])} if strategy.uses_vwap() else {}),
                **(footprint_details(terms, metrics, i) if terms else {}),
                **_levels(strategy, configs, universe, metrics, i),
            },
        )
        for i in np.flatnonzero(mask)
    ]


def _levels(
    strategy: Strategy,
    configs: Mapping[tuple[int, str], SymbolConfig],
    universe: Universe,
    metrics: Metrics,
    i: int,
) -> dict[str, Any]:
    config = configs.get((int(universe.ids[i]), strategy.name))
    return {
        "atr": json_number(metrics.atr[i]),
        "atr_stop_multiplier": _param(strategy, config, "atr_stop_multiplier", 1.5),
        "atr_target_multiplier": _param(strategy, config, "atr_target_multiplier", 3.0),
    }


def _auction(
    strategy: Strategy,
    universe: Universe,
    metrics: Metrics,
    state: npt.NDArray[np.int8],
    confidence: npt.NDArray[np.float64],
    configs: Mapping[tuple[int, str], SymbolConfig],
    mask: npt.NDArray[np.bool_],
    default_min_score: float,
) -> list[Candidate]:
    score, direction = metrics.aggression, metrics.direction
    # cheap vectorised prefilter; per-symbol parameters are read only for what survives
    st_ = np.asarray(state)
    maybe = (
        ((st_ == IMBALANCE_UP) & (direction == DIR_BUY))
        | ((st_ == IMBALANCE_DOWN) & (direction == DIR_SELL))
        | ((st_ == BALANCE) & (direction != DIR_NEUTRAL) & (score >= BALANCE_TRADE_SCORE))
    )
    with np.errstate(invalid="ignore"):
        maybe &= np.isfinite(metrics.atr) & (metrics.atr > 0)
    out: list[Candidate] = []
    for i in np.flatnonzero(mask & maybe):
        config = configs.get((int(universe.ids[i]), strategy.name))
        min_score = _param(strategy, config, "min_aggression_score", default_min_score)
        allow_balance = _flag(strategy, config, "allow_balance_trades")
        st, flow = int(state[i]), int(direction[i])
        if st == IMBALANCE_UP and flow == DIR_BUY:
            side = "BUY"
        elif st == IMBALANCE_DOWN and flow == DIR_SELL:
            side = "SELL"
        elif (
            allow_balance
            and st == BALANCE
            and flow != DIR_NEUTRAL
            and score[i] >= BALANCE_TRADE_SCORE
        ):
            side = "BUY" if flow == DIR_BUY else "SELL"
        else:
            continue
        if score[i] < min_score or not (math.isfinite(metrics.atr[i]) and metrics.atr[i] > 0):
            continue
        name, flow_name = STATE_NAMES[st].value, DIRECTION_NAMES[flow]
        out.append(
            Candidate(
                int(i),
                side,
                float(metrics.price[i]),
                # mypy cannot infer a default-argument lambda
                lambda i=i, name=name, flow_name=flow_name: {  # type: ignore[misc]
                    "price": float(metrics.price[i]),
                    "market_state": name,
                    "confidence": float(confidence[i]),
                    "aggression_score": float(score[i]),
                    "flow_direction": flow_name,
                    "buy_pressure": json_number(metrics.buy_pressure[i]),
                    "sell_pressure": json_number(metrics.sell_pressure[i]),
                    "cvd_momentum": float(metrics.cvd_momentum[i]),
                    "reason": f"{name} + Aggressive {flow_name} (score: {score[i]:.0f})",
                    **_levels(strategy, configs, universe, metrics, i),
                },
            )
        )
    return out
