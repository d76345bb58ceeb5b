"""Loading ``strategies`` and ``strategy_configs`` rows: validation of definitions,
conditions and trading-key bounds, and the trade limits they resolve to per symbol."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from strategies.footprint import (
    BAND_REFS,
    BIG_PRINT_SECONDS,
    BIG_PRINT_WINDOW,
    MAX_BAND_K,
    MAX_STACK_ROWS,
    STACK_METRICS,
)
from strategies.model import (
    AUCTION_MARKET,
    KINDS,
    PRICE_ABOVE_SMA,
    RULES,
    Condition,
    DefinitionError,
    Strategy,
    SymbolConfig,
    TradeLimits,
)
from strategies.rules import FOOTPRINT_TEXT, NUMERIC_METRICS, OPS, REFS, TEXT_METRICS

SIGNAL_TYPES = ("BUY", "SELL")
# SMA periods count 1-minute candles, and the engine reads 2 × the longest period of
# candles for every symbol: a day of minutes is the most a strategy may ask for (a larger
# number is a typo that would make every loop read years of rows, or overflow the window)
MAX_SMA_PERIOD = 1440
# bounds of the trading keys; migration 0005 repeats them as CHECK constraints
ATR_MULTIPLIER_MIN, ATR_MULTIPLIER_MAX = 0.1, 20.0  # both inclusive
RISK_PCT_MAX = 5.0  # risk per trade in (0, RISK_PCT_MAX]
POSITIONS_MAX = 100  # max_positions in [1, POSITIONS_MAX]
DAILY_LOSS_PCT_MAX = 50.0  # max_daily_loss_pct in (0, DAILY_LOSS_PCT_MAX]


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise DefinitionError(f"{what} must be a whole number, got {value!r}")
    if int(value) <= 0:
        raise DefinitionError(f"{what} must be positive, got {value!r}")
    if int(value) > MAX_SMA_PERIOD:
        raise DefinitionError(
            f"{what} counts 1-minute candles and may be at most {MAX_SMA_PERIOD}, got {value!r}"
        )
    return int(value)


def _bounded(
    value: object, what: str, low: float, high: float, low_open: bool = False
) -> float | None:
    """None when absent (JSON null too); else a finite number inside the bounds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DefinitionError(f"{what} must be a number, got {value!r}")
    inside = (low < value if low_open else low <= value) and value <= high
    if not inside:
        bracket = "(" if low_open else "["
        raise DefinitionError(f"{what} must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return float(value)


def _positions(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise DefinitionError(f"{what} must be a whole number, got {value!r}")
    return int(_bounded(value, what, 1, POSITIONS_MAX) or 0)


def check_trading_keys(source: Mapping[str, Any], where: str) -> None:
    """Raise DefinitionError when a trading key of ``source`` is out of bounds."""
    for key in ("atr_stop_multiplier", "atr_target_multiplier"):
        _bounded(source.get(key), f"{where} {key}", ATR_MULTIPLIER_MIN, ATR_MULTIPLIER_MAX)
    _bounded(source.get("risk_per_trade_pct"), f"{where} risk_per_trade_pct", 0, RISK_PCT_MAX, True)
    _positions(source.get("max_positions"), f"{where} max_positions")
    _bounded(
        source.get("max_daily_loss_pct"),
        f"{where} max_daily_loss_pct",
        0,
        DAILY_LOSS_PCT_MAX,
        True,
    )


def parse_config(
    enabled: object, parameters: object, risk_per_trade_pct: object, max_positions: object
) -> SymbolConfig:
    """Validate one ``strategy_configs`` row; raises DefinitionError with the reason."""
    if not isinstance(parameters, Mapping):
        raise DefinitionError("parameters must be a JSON object")
    check_trading_keys(parameters, "parameters")
    return SymbolConfig(
        enabled=bool(enabled),
        parameters=parameters,
        risk_per_trade_pct=_bounded(
            risk_per_trade_pct, "risk_per_trade_pct", 0, RISK_PCT_MAX, low_open=True
        ),
        max_positions=_positions(max_positions, "max_positions"),
    )


def trade_limits(strategy: Strategy, config: SymbolConfig | None) -> TradeLimits:
    """The strategy's risk keys for one symbol, resolved (see the package docstring)."""
    definition = strategy.definition
    params = config.parameters if config else {}
    risk = config.risk_per_trade_pct if config else None
    for source in (params, definition):
        if risk is None and source.get("risk_per_trade_pct") is not None:
            risk = float(source["risk_per_trade_pct"])
    positions = config.max_positions if config else None
    if positions is None and definition.get("max_positions") is not None:
        positions = int(definition["max_positions"])
    loss = definition.get("max_daily_loss_pct")
    return TradeLimits(
        risk_pct=risk,
        max_positions=positions,
        max_daily_loss_pct=None if loss is None else float(loss),
    )


def _whole(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise DefinitionError(f"{what} must be a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise DefinitionError(f"{what} must be in [{low}, {high}], got {value!r}")
    return int(value)


def _footprint_text(metric: str, op: str, raw: Mapping[str, Any]) -> Condition:
    """``ib_break`` or ``big_print``: == / != against one of its values."""
    value = raw.get("value")
    if op not in ("==", "!=") or value not in FOOTPRINT_TEXT[metric]:
        raise DefinitionError(
            f"{metric} compares with == or != against one of "
            f"{', '.join(FOOTPRINT_TEXT[metric])}, got {op} {value!r}"
        )
    if metric == "ib_break":
        return Condition(metric, op, value=value)
    most = int(BIG_PRINT_WINDOW.total_seconds())
    seconds = _whole(raw.get("seconds", BIG_PRINT_SECONDS), "big_print seconds", 1, most)
    return Condition(metric, op, value=value, seconds=seconds)


def _band_k(ref: str, raw: Mapping[str, Any]) -> float | None:
    """A VWAP band's k (standard deviations, in (0, MAX_BAND_K]); None for other refs."""
    if ref not in BAND_REFS:
        return None
    if "k" not in raw:
        raise DefinitionError(f"{ref} needs k, the band's number of standard deviations")
    return _bounded(raw["k"], f"{ref} k", 0, MAX_BAND_K, low_open=True)


def _condition(raw: object) -> Condition:
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"a condition must be an object, got {raw!r}")
    metric, op = raw.get("metric"), raw.get("op")
    if op not in OPS:
        raise DefinitionError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    has_value, ref = "value" in raw, raw.get("ref")
    if has_value == (ref is not None):
        raise DefinitionError(f"condition on {metric!r} needs exactly one of value or ref")
    if "seconds" in raw and metric != "big_print":
        raise DefinitionError(f"seconds belongs to big_print, not to {metric!r}")
    if "k" in raw and ref not in BAND_REFS:
        raise DefinitionError(f"k belongs to the refs vwap_upper / vwap_lower, not to {ref!r}")
    if metric in FOOTPRINT_TEXT:
        return _footprint_text(metric, op, raw)
    if metric in STACK_METRICS:
        if ref is not None:
            raise DefinitionError(f"{metric} compares with a value (rows), not a ref")
        rows = _whole(raw.get("value"), f"{metric} value (rows of a stack)", 1, MAX_STACK_ROWS)
        return Condition(metric, op, value=float(rows))
    if metric in TEXT_METRICS:
        value = raw.get("value")
        if op not in ("==", "!=") or value not in TEXT_METRICS[metric]:
            raise DefinitionError(
                f"{metric} compares with == or != against one of "
                f"{', '.join(TEXT_METRICS[metric])}, got {op} {value!r}"
            )
        return Condition(metric=metric, op=op, value=value)
    if metric not in NUMERIC_METRICS:
        known = ", ".join([*NUMERIC_METRICS, *TEXT_METRICS, *FOOTPRINT_TEXT])
        raise DefinitionError(f"unknown metric {metric!r}; known: {known}")
    if ref is not None:
        if ref == "sma":
            return Condition(
                metric, op, ref="sma", period=_positive_int(raw.get("period"), "period")
            )
        if ref not in REFS:
            raise DefinitionError(f"unknown ref {ref!r}; known: sma, {', '.join(REFS)}")
        return Condition(metric, op, ref=ref, k=_band_k(ref, raw))
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DefinitionError(f"value for {metric} must be a number, got {value!r}")
    return Condition(metric, op, value=float(value))


def parse_strategy(
    strategy_id: int, name: str, definition: object, cooldown_seconds: float | None
) -> Strategy:
    """Validate one ``strategies`` row; raises DefinitionError with the reason."""
    if not isinstance(definition, Mapping):
        raise DefinitionError("definition must be a JSON object")
    kind = definition.get("type")
    if kind not in KINDS:
        raise DefinitionError(f"type must be one of {', '.join(KINDS)}, got {kind!r}")
    symbols: tuple[str, ...] | None = None
    if "symbols" in definition:
        raw = definition["symbols"]
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise DefinitionError("symbols must be a list of symbol names")
        symbols = tuple(s.upper() for s in raw)
    elif "symbol" in definition:
        if not isinstance(definition["symbol"], str):
            raise DefinitionError("symbol must be a symbol name")
        symbols = (definition["symbol"].upper(),)
    signal = str(definition.get("signal", "BUY")).upper()
    if signal not in SIGNAL_TYPES:
        raise DefinitionError(f"signal must be BUY or SELL, got {definition.get('signal')!r}")
    trade = definition.get("trade", kind == AUCTION_MARKET)
    if not isinstance(trade, bool):
        raise DefinitionError("trade must be true or false")
    check_trading_keys(definition, "definition")
    if cooldown_seconds is not None and not float(cooldown_seconds) >= 0:
        raise DefinitionError(f"cooldown_seconds must be ≥ 0, got {cooldown_seconds!r}")
    common = {
        "id": int(strategy_id),
        "name": str(name),
        "kind": kind,
        "definition": definition,
        "cooldown_seconds": float(cooldown_seconds if cooldown_seconds is not None else 300),
        "symbols": symbols,
        "signal": signal,
        "trade": trade,
    }
    if kind == PRICE_ABOVE_SMA:
        return Strategy(**common, period=_positive_int(definition.get("period", 20), "period"))
    if kind == RULES:
        all_ = definition.get("all", [])
        any_ = definition.get("any", [])
        if not isinstance(all_, list) or not isinstance(any_, list) or not (all_ or any_):
            raise DefinitionError("rules need a non-empty list in all or any")
        return Strategy(
            **common,
            all=tuple(_condition(c) for c in all_),
            any=tuple(_condition(c) for c in any_),
        )
    return Strategy(**common)
