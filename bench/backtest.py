"""A year of 1-minute history for 50 symbols through one strategy (target: ≥ 20× the
per-minute loop, and the year in under a minute on 2 cores).

Inputs are synthetic and held in memory (``bench.synthetic.history``): 50 symbols × 252
sessions × 390 one-minute candles (4.9 M; 5.7 M symbol-minutes evaluated with the hour
after each close, while the candle window still holds a price) with per-minute session and
composite profile levels and order flow. The strategy is the auction-market entry (market
state + aggression + ATR, BALANCE trades allowed), the one the engine trades.

Measured: the whole backtest (``run_on_histories``: signals batched per symbol and day
through the engine's functions, then fills, the account's gates, the per-minute equity
curve and the metrics), in symbol-minutes per second, in one process; and, when there are
two cores or more, its wall time with the signal pass dealt over two forked processes
(``--workers 2``) and the one account simulated after them, which must give the same
metrics. Reference, same run: the per-minute loop (``backtest.reference.loop_signals``:
one snapshot, ``compute_metrics``, ``evaluate`` and ``EdgeTracker`` per symbol and minute,
signals only) over the first sessions of the same inputs, whose signals must equal the
batched ones there.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from backtest.frames import decision_instants, window_bounds
from backtest.history import SymbolHistory
from backtest.reference import loop_signals
from backtest.run import Request, run_on_histories
from backtest.signals import symbol_signals
from bench import BenchContext, Comparison
from bench.synthetic.history import history, session_minutes
from strategies.definitions import parse_strategy
from strategies.model import Strategy, sma_periods
from strategies.snapshot import candle_window

DESCRIPTION = "a year of 50 symbols through one strategy vs the per-minute loop"

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday; sessions on consecutive days
MIN_SCORE = 70.0


def _strategy(symbols: list[str]) -> Strategy:
    return parse_strategy(
        1,
        "bench auction",
        {"type": "auction_market", "allow_balance_trades": True, "symbols": symbols},
        300,
    )


def _histories(symbols: int, days: int) -> list[SymbolHistory]:
    ts = session_minutes(days, START.timestamp())
    return [history(k + 1, f"S{k:03d}", ts, seed=k, price=20.0 + 5 * k) for k in range(symbols)]


def _request(days: int) -> Request:
    last = (START + timedelta(days=days - 1)).date()
    return Request("bench auction", START.date(), last)


def run(ctx: BenchContext) -> list[Comparison]:
    symbols, days = (6, 5) if ctx.quick else (50, 252)
    loop_days = 1 if ctx.quick else 2
    hs = _histories(symbols, days)
    strategy = _strategy([h.symbol for h in hs])
    request = _request(days)

    t0 = time.perf_counter()
    result = run_on_histories(strategy, hs, {}, request)
    one_process = time.perf_counter() - t0
    minutes = result.symbol_minutes
    rate = minutes / one_process

    # two processes: the signal pass dealt over two forked processes, then the one account
    two_process = float("nan")
    if (os.cpu_count() or 1) >= 2:
        t0 = time.perf_counter()
        both = run_on_histories(strategy, hs, {}, request, workers=2)
        two_process = time.perf_counter() - t0
        if both.metrics != result.metrics:
            raise RuntimeError("the two-process run differs from the one-process run")

    # the reference loop over the first sessions; both paths must agree there
    # (the minutes with a candle window, as the batched path counts them)
    asof = decision_instants(START, START + timedelta(days=loop_days))
    window = candle_window(sma_periods([strategy])).total_seconds()
    live = [np.subtract(*window_bounds(h.ts, asof, window)[::-1]) > 0 for h in hs]
    asof = asof[np.logical_or.reduce(live)]
    loop_minutes = sum(int(np.count_nonzero(x)) for x in live)
    t0 = time.perf_counter()
    loop = loop_signals(strategy, hs, asof, {}, MIN_SCORE)
    loop_s = time.perf_counter() - t0
    batched = sorted(
        (s.ts, s.symbol_id, s.type)
        for h in hs
        for s in symbol_signals(strategy, h, asof, {}, MIN_SCORE).signals
    )
    if batched != sorted(loop):
        raise RuntimeError("batched signals differ from the per-minute loop")
    loop_rate = loop_minutes / loop_s
    return [
        Comparison(
            name=f"backtest, {symbols} symbols x {days} days",
            unit="sym-min/s",
            value=rate,
            reference_name="per-minute loop",
            reference_value=loop_rate,
            target=">= 20x the per-minute loop",
            notes={
                "symbol-minutes": float(minutes),
                "one process s": one_process,
                "two processes s": two_process,
                "signals s": result.seconds["signals"],
                "trades+curve s": result.seconds["trades"],
                "signals": float(len(result.signals)),
                "trades": float(len(result.trades)),
                "loop symbol-minutes": float(loop_minutes),
            },
        ),
        Comparison(
            name=f"backtest wall, {symbols} symbols x {days} days",
            unit="s",
            value=min(one_process, two_process) if two_process == two_process else one_process,
            reference_name="one minute",
            reference_value=60.0,
            higher_is_better=False,
            target="a year of 50 symbols < 60 s on 2 cores",
        ),
    ]
