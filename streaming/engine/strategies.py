"""Strategies from the ``strategies`` table: JSON definitions evaluated for all symbols at once.

A row of ``strategies`` has a ``definition`` (JSON) whose ``type`` is one of:

``price_above_sma`` (the simplest rule)
    ``{"type": "price_above_sma", "period": 20, "symbol": "AAPL", "signal": "BUY"}``:
    true while the latest close is above the mean of the last ``period`` closes.

``auction_market`` (Auction Market Theory: docs/semantics.md)
    Entry when the market state is IMBALANCE_UP with BUY flow or IMBALANCE_DOWN with SELL
    flow (or, with ``allow_balance_trades``, BALANCE with a score ≥ 80 and a flow
    direction), the aggression score is ≥ ``min_aggression_score`` and there is an ATR.
    Signal BUY for IMBALANCE_UP, SELL for IMBALANCE_DOWN, the flow direction for BALANCE.
    Parameters (``min_aggression_score``, ``atr_stop_multiplier``, ``atr_target_multiplier``,
    ``allow_balance_trades``) come from ``strategy_configs.parameters`` for the symbol, else
    the definition, else the settings (``MIN_AGGRESSION_SCORE``) and 1.5 / 3.0 / false.

``rules`` (the rule vocabulary: a strategy without code)
    ``{"type": "rules", "signal": "BUY", "symbols": ["AAPL", "MSFT"],
       "all": [{"metric": "price", "op": ">", "ref": "sma", "period": 20},
               {"metric": "market_state", "op": "==", "value": "IMBALANCE_UP"},
               {"metric": "aggression_score", "op": ">=", "value": 70},
               {"metric": "cvd_slope", "op": ">", "value": 0}],
       "any": []}``
    True when every condition of ``all`` holds and, if ``any`` is given, at least one of it.
    A condition compares a ``metric`` with an ``op`` (``>``, ``>=``, ``<``, ``<=``, ``==``,
    ``!=``) against either a constant ``value`` or a ``ref``:

    - numeric metrics: ``price`` (latest 1-minute close), ``aggression_score`` (0–100,
      ``analytics.aggression``), ``cvd_slope`` (CVD change per minute over the last five
      order-flow buckets), ``cvd_momentum``, ``buy_pressure``, ``sell_pressure`` (0–100),
      ``momentum_pct`` (percent change over 60 minutes), ``confidence`` (market state,
      0–100), ``atr`` (ATR 14);
    - text metrics (``==`` / ``!=`` with a ``value`` only): ``market_state`` (BALANCE,
      IMBALANCE_UP, IMBALANCE_DOWN, UNKNOWN), ``flow_direction`` (BUY, SELL, NEUTRAL);
    - refs: ``sma`` (needs ``period``), ``vwap`` (session VWAP), ``poc``, ``vah``, ``val``
      (session profile), ``composite_poc``, ``composite_vah``, ``composite_val``.

    A missing value (no candles, no profile yet) makes its condition false.

Every type also accepts: ``symbol`` or ``symbols`` (else the symbols with an enabled
``strategy_configs`` row for the strategy's name; a row with ``enabled = false`` always
excludes its symbol), ``signal`` (BUY or SELL, default BUY, not for ``auction_market``),
``trade`` (send the signal to the auto-trader, US equities only; default true for
``auction_market``, false otherwise) and ``atr_stop_multiplier`` /
``atr_target_multiplier`` for the bracket.

Trading keys are validated when a row is loaded (and by CHECK constraints in the
database, docs/trading-safety.md): ``atr_stop_multiplier`` / ``atr_target_multiplier`` in
[0.1, 20], ``risk_per_trade_pct`` in (0, 5], ``max_positions`` a whole number in
[1, 100], ``max_daily_loss_pct`` in (0, 50]. A definition outside them is skipped with the
reason; a ``strategy_configs`` row outside them disables its symbol for that strategy.
The risk per trade is the config row's ``risk_per_trade_pct``, else its parameters', else
the definition's, else ``RISK_PER_TRADE_PCT``; a strategy's open positions are capped by
the config row's ``max_positions``, else the definition's; the definition's
``max_daily_loss_pct`` applies when stricter than ``MAX_DAILY_LOSS_PCT`` (``TradeLimits``).

Signals fire on the rising edge of a strategy's condition per symbol (or when its signal
type changes), at most once per ``strategies.cooldown_seconds`` (``EdgeTracker``).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.aggression import DIR_BUY, DIR_NEUTRAL, DIR_SELL, DIRECTION_NAMES
from analytics.market_state import BALANCE, IMBALANCE_DOWN, IMBALANCE_UP, STATE_NAMES
from streaming.engine.snapshot import Metrics, Universe, json_number

PRICE_ABOVE_SMA = "price_above_sma"
AUCTION_MARKET = "auction_market"
RULES = "rules"
KINDS = (PRICE_ABOVE_SMA, AUCTION_MARKET, RULES)
SIGNAL_TYPES = ("BUY", "SELL")
BALANCE_TRADE_SCORE = 80.0  # BALANCE entries need a score ≥ 80
# SMA periods count 1-minute candles, and the engine reads 2 × the longest period of
# candles for every symbol: a day of minutes is the most a strategy may ask for (a larger
# number is a typo that would make every loop read years of rows, or overflow the window)
MAX_SMA_PERIOD = 1440
# bounds of the trading keys; migration 0005 repeats them as CHECK constraints
ATR_MULTIPLIER_MIN, ATR_MULTIPLIER_MAX = 0.1, 20.0  # both inclusive
RISK_PCT_MAX = 5.0  # risk per trade in (0, RISK_PCT_MAX]
POSITIONS_MAX = 100  # max_positions in [1, POSITIONS_MAX]
DAILY_LOSS_PCT_MAX = 50.0  # max_daily_loss_pct in (0, DAILY_LOSS_PCT_MAX]

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


class DefinitionError(ValueError):
    """A strategy definition the engine cannot run; the message says what is wrong."""


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float | str | None = None
    ref: str | None = None
    period: int | None = None


@dataclass(frozen=True)
class SymbolConfig:
    enabled: bool = True
    parameters: Mapping[str, Any] = field(default_factory=dict)
    risk_per_trade_pct: float | None = None
    max_positions: int | None = None


@dataclass(frozen=True)
class TradeLimits:
    """What the trader applies to one strategy's order for one symbol (None: the
    account-wide setting alone)."""

    risk_pct: float | None = None
    max_positions: int | None = None
    max_daily_loss_pct: float | None = None


@dataclass(frozen=True)
class Strategy:
    id: int
    name: str
    kind: str
    cooldown_seconds: float
    definition: Mapping[str, Any]
    symbols: tuple[str, ...] | None
    signal: str = "BUY"
    trade: bool = False
    period: int = 0
    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()

    def sma_periods(self) -> set[int]:
        periods = {c.period for c in (*self.all, *self.any) if c.ref == "sma" and c.period}
        if self.kind == PRICE_ABOVE_SMA:
            periods.add(self.period)
        return periods

    def uses_vwap(self) -> bool:
        return any(c.ref == "vwap" for c in (*self.all, *self.any))


@dataclass
class Candidate:
    """A strategy's condition holding for one symbol in this loop.

    ``details`` is built on first use: most candidates are a condition that still holds
    and never fires, so describing them every second would be wasted work.
    """

    index: int  # position in the Universe
    type: str  # BUY | SELL
    price: float
    describe: Callable[[], dict[str, Any]] = field(repr=False, compare=False)

    @functools.cached_property
    def details(self) -> dict[str, Any]:
        return self.describe()


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
    """The strategy's risk keys for one symbol, resolved (see the module docstring)."""
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


def _condition(raw: object) -> Condition:
    if not isinstance(raw, Mapping):
        raise DefinitionError(f"a condition must be an object, got {raw!r}")
    metric, op = raw.get("metric"), raw.get("op")
    if op not in OPS:
        raise DefinitionError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    has_value, ref = "value" in raw, raw.get("ref")
    if has_value == (ref is not None):
        raise DefinitionError(f"condition on {metric!r} needs exactly one of value or ref")
    if metric in TEXT_METRICS:
        value = raw.get("value")
        if op not in ("==", "!=") or value not in TEXT_METRICS[metric]:
            raise DefinitionError(
                f"{metric} compares with == or != against one of "
                f"{', '.join(TEXT_METRICS[metric])}, got {op} {value!r}"
            )
        return Condition(metric=metric, op=op, value=value)
    if metric not in NUMERIC_METRICS:
        known = ", ".join([*NUMERIC_METRICS, *TEXT_METRICS])
        raise DefinitionError(f"unknown metric {metric!r}; known: {known}")
    if ref is not None:
        if ref == "sma":
            return Condition(
                metric, op, ref="sma", period=_positive_int(raw.get("period"), "period")
            )
        if ref not in REFS:
            raise DefinitionError(f"unknown ref {ref!r}; known: sma, {', '.join(REFS)}")
        return Condition(metric, op, ref=ref)
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
    """Which symbols a strategy runs on (see the module docstring)."""
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


def sma_periods(strategies: Iterable[Strategy]) -> frozenset[int]:
    return frozenset(p for s in strategies for p in s.sma_periods())


class EdgeTracker:
    """Rising edge + cooldown per (strategy, symbol).

    ``observe`` gets the signal type a condition gives now (None when it does not hold)
    and says whether to fire: only when it turns on (or changes type) and the last signal
    of that pair is at least ``cooldown`` seconds old. An edge inside the cooldown is
    swallowed, not queued: the condition must fall and rise again. Only pairs whose
    condition holds are remembered, so a loop touches the true pairs, not every symbol.
    """

    def __init__(self) -> None:
        self._holding: dict[int, dict[int, str]] = {}  # strategy → symbol → signal type
        self._fired_at: dict[tuple[int, int], float] = {}
        self._undo: dict[tuple[int, int], tuple[str | None, float | None]] = {}

    def seed(self, fired_at: Mapping[tuple[int, int], float]) -> None:
        """Last signal times from the ``signals`` table, so a restart keeps the cooldown."""
        for key, ts in fired_at.items():
            self._fired_at[key] = max(ts, self._fired_at.get(key, float("-inf")))

    def holding(self, strategy_id: int) -> set[int]:
        """Symbols whose condition held at the last observation for this strategy."""
        return set(self._holding.get(strategy_id, ()))

    def observe(self, key: tuple[int, int], value: str | None, now: float, cooldown: float) -> bool:
        strategy_id, symbol_id = key
        held = self._holding.setdefault(strategy_id, {})
        previous = held.get(symbol_id)
        self._undo[key] = (previous, self._fired_at.get(key))
        if value is None:
            held.pop(symbol_id, None)
            return False
        held[symbol_id] = value
        if value == previous:
            return False
        if now - self._fired_at.get(key, float("-inf")) < cooldown:
            return False
        self._fired_at[key] = now
        return True

    def rollback(self, key: tuple[int, int]) -> None:
        """Undo the last ``observe`` of ``key`` (its signal could not be recorded)."""
        if key not in self._undo:
            return
        last, fired = self._undo.pop(key)
        held = self._holding.setdefault(key[0], {})
        if last is None:
            held.pop(key[1], None)
        else:
            held[key[1]] = last
        if fired is None:
            self._fired_at.pop(key, None)
        else:
            self._fired_at[key] = fired

    def forget(self, strategy_ids: set[int]) -> None:
        """Drop the remembered conditions of strategies no longer active."""
        for sid in [s for s in self._holding if s not in strategy_ids]:
            del self._holding[sid]
