"""The per-minute loop: the engine's ``_strategies`` step run once per minute and symbol.

What a backtest without the batching would do, kept as the reference the batched path
(``signals.symbol_signals``) must equal (tests) and beat (``marketflow bench backtest``):
every minute, a one-group snapshot per symbol, ``compute_metrics``, ``evaluate``, then
``EdgeTracker.observe`` for the symbols that hold and for those that stopped holding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from backtest.frames import snapshot_at
from backtest.history import SymbolHistory
from strategies.edges import EdgeTracker
from strategies.evaluation import evaluate, target_mask
from strategies.model import Strategy, SymbolConfig, sma_periods
from strategies.snapshot import Universe, candle_window, compute_metrics

F = npt.NDArray[np.float64]


def loop_signals(
    strategy: Strategy,
    histories: Sequence[SymbolHistory],
    asof: F,
    configs: Mapping[tuple[int, str], SymbolConfig],
    default_min_score: float,
) -> list[tuple[float, int, str]]:
    """(instant, symbol id, type) of every signal, minute by minute."""
    periods = sma_periods([strategy])
    window = candle_window(periods)
    edges = EdgeTracker()
    out: list[tuple[float, int, str]] = []
    one = np.ones(1, dtype=bool)
    runs = [h for h in histories if target_mask(strategy, _universe(h), configs)[0]]
    for t in asof.tolist():
        holding: dict[int, str] = {}
        for h in runs:
            snap = snapshot_at(
                h,
                np.array([t]),
                window,
                want_vwap=strategy.uses_vwap(),
                want_footprint=strategy.uses_footprint(),
            )
            metrics = compute_metrics(snap, periods)
            for cand in evaluate(
                strategy,
                snap.universe,
                metrics,
                metrics.state,
                metrics.confidence,
                configs,
                default_min_score,
                one,
            ):
                holding[h.symbol_id] = cand.type
        for sid in edges.holding(strategy.id) - holding.keys():
            edges.observe((strategy.id, sid), None, t, strategy.cooldown_seconds)
        for sid, kind in holding.items():
            if edges.observe((strategy.id, sid), kind, t, strategy.cooldown_seconds):
                out.append((t, sid, kind))
    return out


def _universe(h: SymbolHistory) -> Universe:
    return Universe(np.array([h.symbol_id]), (h.symbol,), (h.market,), (h.asset_type,))
