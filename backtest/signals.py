"""Signals of one strategy over a symbol's history, decided by the engine's own functions.

Per batch of minutes (a day by default): ``frames.snapshot_at`` builds what the engine read
at each minute, ``compute_metrics`` turns it into metrics (market state, aggression,
indicators), ``strategies.evaluate`` says where the strategy's condition holds and
``EdgeTracker`` applies the rising edge and the cooldown, minute after minute, exactly as
the engine's loop does on every tick. The engine refreshes market state every 5 s, so on a
one-minute clock the state of every minute is that minute's own.

``EdgeTracker.observe`` is called only at the minutes where the condition's answer changes:
between them the engine's calls are no-ops (the same signal type again never fires), so the
decisions are the engine's while the Python work is per change, not per minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.market_state import STATE_NAMES
from backtest.frames import snapshot_at, window_bounds
from backtest.history import SymbolHistory
from strategies.edges import EdgeTracker
from strategies.evaluation import evaluate, target_mask
from strategies.model import Strategy, SymbolConfig, sma_periods
from strategies.snapshot import (
    Metrics,
    Snapshot,
    Universe,
    candle_window,
    compute_metrics,
)

F = npt.NDArray[np.float64]
BATCH_MINUTES = 1440
CODES = {"BUY": 1, "SELL": -1}
TYPES = {1: "BUY", -1: "SELL"}


@dataclass(frozen=True)
class Signal:
    ts: float  # the decision instant (epoch seconds), the engine's signal row time
    strategy_id: int
    symbol_id: int
    symbol: str
    market: str
    type: str  # BUY | SELL
    price: float
    price_time: float | None  # minute of the candle the price comes from
    details: Mapping[str, Any] = field(default_factory=dict)
    # the context at the signal, for the trades table
    market_state: str = "UNKNOWN"
    aggression: float = float("nan")
    va_position: str = "unknown"  # above_vah | inside_va | below_val | unknown


def va_position(price: float, vah: float, val: float) -> str:
    if not (np.isfinite(price) and np.isfinite(vah) and np.isfinite(val)):
        return "unknown"
    if price > vah:
        return "above_vah"
    if price < val:
        return "below_val"
    return "inside_va"


@dataclass
class SymbolRun:
    """What one symbol's pass produced (``minutes``: instants with a candle window)."""

    signals: list[Signal] = field(default_factory=list)
    minutes: int = 0


def _signal(
    strategy: Strategy, h: SymbolHistory, metrics: Metrics, snap: Snapshot, cand: Any, t: float
) -> Signal:
    i = cand.index
    end, start = int(snap.candle_offsets[i + 1]), int(snap.candle_offsets[i])
    return Signal(
        ts=t,
        strategy_id=strategy.id,
        symbol_id=h.symbol_id,
        symbol=h.symbol,
        market=h.market,
        type=cand.type,
        price=cand.price,
        price_time=float(snap.candle_ts[end - 1]) if end > start else None,
        details=dict(cand.details),
        market_state=STATE_NAMES[int(metrics.state[i])].value,
        aggression=float(metrics.aggression[i]),
        va_position=va_position(
            float(metrics.price[i]), float(metrics.vah[i]), float(metrics.val[i])
        ),
    )


def symbol_signals(
    strategy: Strategy,
    h: SymbolHistory,
    asof: F,
    configs: Mapping[tuple[int, str], SymbolConfig],
    default_min_score: float,
    edges: EdgeTracker | None = None,
    *,
    batch: int = BATCH_MINUTES,
    progress: Callable[[int], None] | None = None,
) -> SymbolRun:
    """The signals ``strategy`` sends for ``h`` at the decision instants ``asof`` (sorted)."""
    edges = edges if edges is not None else EdgeTracker()
    periods = sma_periods([strategy])
    window = candle_window(periods)
    one = Universe(
        np.array([h.symbol_id], dtype=np.int64), (h.symbol,), (h.market,), (h.asset_type,)
    )
    runs = bool(target_mask(strategy, one, configs)[0])
    key = (strategy.id, h.symbol_id)
    out = SymbolRun()
    prev = 0
    for b in range(0, len(asof), batch):
        part = asof[b : b + batch]
        if progress is not None:
            progress(len(part))
        if not runs:
            continue
        fired, prev, minutes = _batch(
            strategy, h, part, window, periods, configs, default_min_score, edges, key, prev
        )
        out.signals.extend(fired)
        out.minutes += minutes
    return out


def _batch(
    strategy: Strategy,
    h: SymbolHistory,
    part: F,
    window: timedelta,
    periods: frozenset[int],
    configs: Mapping[tuple[int, str], SymbolConfig],
    default_min_score: float,
    edges: EdgeTracker,
    key: tuple[int, int],
    prev: int,
) -> tuple[list[Signal], int, int]:
    lo, hi = window_bounds(h.ts, part, window.total_seconds())
    active = np.flatnonzero(hi > lo)  # no candle in the window: no price, nothing holds
    values = np.zeros(len(part), dtype=np.int8)
    by_minute: dict[int, Any] = {}
    metrics: Metrics | None = None
    snap: Snapshot | None = None
    if len(active):
        snap = snapshot_at(
            h,
            part[active],
            window,
            want_vwap=strategy.uses_vwap(),
            want_footprint=strategy.uses_footprint(),
            bounds=(lo[active], hi[active]),
        )
        metrics = compute_metrics(snap, periods)
        targets = np.ones(len(active), dtype=bool)
        for cand in evaluate(
            strategy,
            snap.universe,
            metrics,
            metrics.state,
            metrics.confidence,
            configs,
            default_min_score,
            targets,
        ):
            minute = int(active[cand.index])
            values[minute] = CODES[cand.type]
            by_minute[minute] = cand
    before = np.concatenate([[prev], values[:-1]])
    fired: list[Signal] = []
    for minute in np.flatnonzero(values != before).tolist():
        code = int(values[minute])
        t = float(part[minute])
        if edges.observe(key, TYPES.get(code), t, strategy.cooldown_seconds):
            assert metrics is not None and snap is not None
            fired.append(_signal(strategy, h, metrics, snap, by_minute[minute], t))
    return fired, int(values[-1]) if len(values) else prev, len(active)
