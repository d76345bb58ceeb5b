"""One backtest: a strategy over symbols and days, from stored history to metrics.

``run_on_histories`` is pure (histories in, ``Result`` out); ``run_backtest`` reads the
strategy, its per-symbol configs and the history from PostgreSQL first. Strategies and
configs are validated by the engine's own parsers, so a definition the engine would skip
is refused here with the same reason.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import numpy as np
import psycopg

from analytics.increments import Increments
from analytics.sessions import ALWAYS_OPEN
from backtest.curve import Curve, Daily, daily_stats, equity_curve
from backtest.fills import Candles
from backtest.frames import decision_instants
from backtest.history import SymbolHistory, load_history, symbol_increments, symbols
from backtest.metrics import TRADING_DAYS, summary
from backtest.portfolio import Account, Book, Trade, simulate
from backtest.prints import Prints, StoredPrints
from backtest.signals import Signal, symbol_signals
from strategies.definitions import parse_config, parse_strategy
from strategies.edges import EdgeTracker
from strategies.evaluation import target_mask
from strategies.model import DefinitionError, Strategy, SymbolConfig, sma_periods
from strategies.snapshot import Universe, candle_window

STRATEGY_SQL = "select id, name, definition, cooldown_seconds from strategies where name = %s"
CONFIGS_SQL = """
select symbol_id, strategy_name, enabled, parameters, risk_per_trade_pct, max_positions
from strategy_configs where strategy_name = %s
"""


class BacktestError(ValueError):
    """A backtest that cannot run (unknown strategy, bad definition, empty period)."""


@dataclass(frozen=True)
class Request:
    strategy: str
    first_day: date  # UTC days, both inclusive
    last_day: date
    symbols: tuple[str, ...] | None = None  # None: the strategy's own targets
    account: Account = field(default_factory=Account)
    min_aggression_score: float = 70.0  # MIN_AGGRESSION_SCORE
    ticks: bool = True  # stored prints fill entries and decide ambiguous candles

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, dtime(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), dtime(), UTC)

    def parameters(self) -> dict[str, Any]:
        a = self.account
        return {
            **{k: v for k, v in dataclasses.asdict(a).items() if k != "costs"},
            **dataclasses.asdict(a.costs),
            "min_aggression_score": self.min_aggression_score,
            "ticks": self.ticks,
        }


@dataclass
class Result:
    strategy: Strategy
    symbols: list[str]
    signals: list[Signal]
    book: Book
    curve: Curve
    daily: Daily
    metrics: dict[str, Any]
    by_symbol: dict[str, dict[str, Any]]
    symbol_minutes: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def trades(self) -> list[Trade]:
        return self.book.trades


def load_strategy(
    conn: psycopg.Connection, name: str
) -> tuple[Strategy, dict[tuple[int, str], SymbolConfig]]:
    row = conn.execute(STRATEGY_SQL, (name,)).fetchone()
    if row is None:
        raise BacktestError(f"no strategy named {name!r}")
    try:
        strategy = parse_strategy(row[0], row[1], row[2], row[3])
    except DefinitionError as exc:
        raise BacktestError(f"strategy {name!r} cannot run: {exc}") from exc
    configs: dict[tuple[int, str], SymbolConfig] = {}
    for sid, sname, enabled, params, risk, positions in conn.execute(CONFIGS_SQL, (name,)):
        try:
            configs[(int(sid), sname)] = parse_config(enabled, params, risk, positions)
        except DefinitionError:  # the engine disables such a row for its symbol too
            configs[(int(sid), sname)] = SymbolConfig(enabled=False)
    return strategy, configs


def candles_of(h: SymbolHistory) -> Candles:
    return Candles(h.ts, h.open, h.high, h.low, h.close)


def collect_signals(
    strategy: Strategy,
    histories: Sequence[SymbolHistory],
    configs: Mapping[tuple[int, str], SymbolConfig],
    request: Request,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Signal], int]:
    """Every symbol's signals over the request's minutes, and the symbol-minutes evaluated.
    Symbols are independent here (edges and cooldowns are per symbol), so any split of
    the symbols over processes gives the same signals."""
    asof = decision_instants(request.start, request.end)
    edges = EdgeTracker()
    signals: list[Signal] = []
    minutes = 0
    for h in histories:
        out = symbol_signals(
            strategy, h, asof, configs, request.min_aggression_score, edges, progress=progress
        )
        signals.extend(out.signals)
        minutes += out.minutes
    return signals, minutes


_FORKED: list[SymbolHistory] = []  # the histories forked workers read (never pickled)


def _signals_of(
    args: tuple[list[int], Strategy, Mapping[tuple[int, str], SymbolConfig], Request],
) -> tuple[list[Signal], int]:
    picked, strategy, configs, request = args
    return collect_signals(strategy, [_FORKED[k] for k in picked], configs, request)


def collect_signals_forked(
    strategy: Strategy,
    histories: Sequence[SymbolHistory],
    configs: Mapping[tuple[int, str], SymbolConfig],
    request: Request,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Signal], int]:
    """``collect_signals`` with the symbols dealt over ``workers`` forked processes, which
    inherit the histories instead of receiving copies; the same signals, in symbol order."""
    global _FORKED
    per_symbol = len(decision_instants(request.start, request.end))
    hands = [list(range(k, len(histories), workers)) for k in range(workers)]
    _FORKED = list(histories)
    signals: list[Signal] = []
    minutes = 0
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [(hand, strategy, configs, request) for hand in hands if hand]
            for (found, n), hand in zip(pool.map(_signals_of, jobs), hands, strict=False):
                signals.extend(found)
                minutes += n
                if progress is not None:
                    progress(per_symbol * len(hand))
    finally:
        _FORKED = []
    order = {h.symbol_id: k for k, h in enumerate(histories)}
    signals.sort(key=lambda s: (order[s.symbol_id], s.ts))
    return signals, minutes


def run_on_histories(
    strategy: Strategy,
    histories: Sequence[SymbolHistory],
    configs: Mapping[tuple[int, str], SymbolConfig],
    request: Request,
    progress: Callable[[int], None] | None = None,
    signals: tuple[list[Signal], int] | None = None,
    prints: Prints | None = None,
    workers: int = 1,
    increments: Mapping[int, Increments] | None = None,
) -> Result:
    """The whole backtest (``signals``: the ``collect_signals`` answer when already known;
    ``workers`` > 1: the signal pass over that many forked processes; ``increments``: the
    symbols' order steps by id, else each market's asset rule)."""
    t0 = time.perf_counter()
    if signals is None and workers > 1 and len(histories) > 1:
        workers = min(workers, len(histories))
        signals = collect_signals_forked(strategy, histories, configs, request, workers, progress)
    elif signals is None:
        signals = collect_signals(strategy, histories, configs, request, progress)
    found, minutes = signals
    t1 = time.perf_counter()
    candles = {h.symbol_id: candles_of(h) for h in histories}
    account = request.account
    book = simulate(strategy, found, candles, configs, account, prints, increments)
    start, end = request.start.timestamp(), request.end.timestamp()
    curve = equity_curve(book.trades, candles, start, end, account.capital)
    daily = daily_stats(curve, book.trades, account.capital)
    always = all(h.market == ALWAYS_OPEN for h in histories) and bool(histories)
    periods = 365 if always else TRADING_DAYS
    by_symbol = {}
    for h in histories:
        mine = [tr for tr in book.trades if tr.signal.symbol_id == h.symbol_id]
        c = equity_curve(mine, candles, start, end, account.capital)
        by_symbol[h.symbol] = _summary(mine, c, daily_stats(c, mine, account.capital), periods)
    t2 = time.perf_counter()
    return Result(
        strategy=strategy,
        symbols=[h.symbol for h in histories],
        signals=found,
        book=book,
        curve=curve,
        daily=daily,
        metrics={**_summary(book.trades, curve, daily, periods), "blocked": dict(book.blocked)},
        by_symbol=by_symbol,
        symbol_minutes=minutes,
        seconds={"signals": t1 - t0, "trades": t2 - t1},
    )


def _summary(trades: Sequence[Trade], curve: Curve, daily: Daily, periods: int) -> dict[str, Any]:
    return summary(
        [tr.fill.pnl for tr in trades],
        [(tr.exit_ts - tr.fill.entry_ts) / 60.0 for tr in trades],
        [tr.fill.exit.reason for tr in trades],
        curve.equity,
        daily.returns,
        curve.exposed_minutes,
        periods,
    )


def targets(
    conn: psycopg.Connection,
    strategy: Strategy,
    configs: Mapping[tuple[int, str], SymbolConfig],
    wanted: Sequence[str] | None,
) -> tuple[Strategy, list[tuple[int, str, str, str]]]:
    """The symbols to test: ``wanted`` when given (the strategy runs on them as if they
    were its own list), else the strategy's targets as the engine picks them."""
    if wanted:
        strategy = dataclasses.replace(strategy, symbols=tuple(s.upper() for s in wanted))
    rows = symbols(conn, list(strategy.symbols) if strategy.symbols else None)
    universe = Universe(
        np.array([r[0] for r in rows], dtype=np.int64),
        tuple(r[1] for r in rows),
        tuple(r[2] for r in rows),
        tuple(r[3] for r in rows),
    )
    mask = target_mask(strategy, universe, configs) if rows else np.zeros(0, bool)
    return strategy, [r for r, keep in zip(rows, mask.tolist(), strict=True) if keep]


def run_backtest(
    conn: psycopg.Connection,
    request: Request,
    progress: Callable[[int], None] | None = None,
    on_symbols: Callable[[list[str], int], None] | None = None,
    workers: int = 1,
) -> Result:
    """Read everything the request needs and run it (``on_symbols``: the symbols chosen
    and the number of symbol-minutes ahead, for a progress bar)."""
    if request.last_day < request.first_day:
        raise BacktestError("the period ends before it starts")
    strategy, configs = load_strategy(conn, request.strategy)
    strategy, chosen = targets(conn, strategy, configs, request.symbols)
    if not chosen:
        raise BacktestError(f"strategy {strategy.name!r} targets no known symbol")
    if on_symbols is not None:
        total = len(decision_instants(request.start, request.end)) * len(chosen)
        on_symbols([r[1] for r in chosen], total)
    t0 = time.perf_counter()
    window = candle_window(sma_periods([strategy]))
    histories = [load_history(conn, r, request.start, request.end, window) for r in chosen]
    loaded = time.perf_counter() - t0
    prints = StoredPrints(conn) if request.ticks else None
    steps = symbol_increments(conn, [r[0] for r in chosen])
    result = run_on_histories(
        strategy, histories, configs, request, progress, prints=prints, workers=workers,
        increments=steps,
    )  # fmt: skip
    result.seconds["load"] = loaded
    return result
