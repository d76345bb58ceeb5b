"""From signals to trades: the trader's gates and sizing on a simulated account.

Signals of all symbols are taken in time order (then symbol id, as the engine's loop
orders its universe). Each one goes through the gates the auto-trader applies, in its
order and with its pure functions (``strategies.gates``, ``analytics.risk``):
market open, price age, strategy parameters, bracket levels (ATR, in the symbol's price
increments), no short crypto, the account gates (minimum balance, daily loss, shorting),
the position size (in the symbol's quantity increments: whole shares, fractional crypto)
and the order caps, then one position per symbol and the account's and the strategy's
position limits. The first failing gate is counted as the reason the signal did not
trade.

The simulated account: equity = capital + realised P&L + the open positions marked at
their last close; the previous day's equity (daily-loss gate) is the equity at the
start of the signal's UTC day; buying power = equity − the notional of open positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from analytics.increments import Increments
from analytics.risk import bracket_levels, cap_quantity, position_size, within_caps
from analytics.sessions import UnknownMarketError, session_bounds
from backtest.fills import Candles, Costs, Fill, entry_index, fill_trade
from backtest.prints import Prints, first_touch
from backtest.signals import Signal
from core.contracts import Side
from core.settings import Settings
from strategies.definitions import trade_limits
from strategies.gates import (
    AccountView,
    Limits,
    account_gate,
    asset_gate,
    market_open,
    position_gate,
    price_gate,
)
from strategies.intents import OrderIntent, parameters_ok
from strategies.model import Strategy, SymbolConfig

DAY_S = 86_400.0


@dataclass(frozen=True)
class Account:
    """The simulated account and the trader's settings (``core.settings`` defaults)."""

    capital: float = 100_000.0
    risk_pct: float | None = None  # None: the strategy's, else ``default_risk_pct``
    default_risk_pct: float = 1.0
    costs: Costs = field(default_factory=Costs)
    max_positions: int = 1
    max_daily_loss_pct: float = 3.0
    min_balance: float = 1000.0
    max_order_qty: int = 500
    max_order_notional: float = 10_000.0
    max_price_age_s: float = 120.0
    shorting: bool = True
    exit_at_session_close: bool = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        capital: float,
        risk_pct: float | None,
        costs: Costs,
        max_positions: int | None,
        shorting: bool,
        exit_at_session_close: bool,
    ) -> Account:
        """A run's own choices over the trader's limits from the settings, as live uses them."""
        return cls(
            capital=capital,
            risk_pct=risk_pct,
            default_risk_pct=settings.risk_per_trade_pct,
            costs=costs,
            max_positions=max_positions or settings.max_positions,
            max_daily_loss_pct=settings.max_daily_loss_pct,
            min_balance=settings.min_account_balance,
            max_order_qty=settings.max_order_qty,
            max_order_notional=settings.max_order_notional,
            max_price_age_s=settings.order_max_price_age_seconds,
            shorting=shorting,
            exit_at_session_close=exit_at_session_close,
        )


@dataclass(frozen=True)
class Trade:
    signal: Signal
    side: Side
    stop: float
    target: float
    fill: Fill

    @property
    def exit_ts(self) -> float:
        return self.fill.exit.ts

    @property
    def sign(self) -> float:
        return 1.0 if self.side is Side.BUY else -1.0


@dataclass
class Book:
    trades: list[Trade] = field(default_factory=list)
    blocked: dict[str, int] = field(default_factory=dict)

    def block(self, why: str) -> None:
        self.blocked[why] = self.blocked.get(why, 0) + 1


def intent(
    strategy: Strategy,
    sig: Signal,
    config: SymbolConfig | None,
    increments: Increments | None = None,
) -> OrderIntent:
    """The order the engine would hand the trader for this signal (``order_intent``), in
    the symbol's increments (``increments``; None: the market's asset rule)."""
    if increments is None:
        increments = Increments.for_symbol("crypto" if sig.market == "24/7" else "stock")
    limits = trade_limits(strategy, config)
    d = sig.details
    return OrderIntent(
        strategy_id=strategy.id,
        strategy=strategy.name,
        symbol_id=sig.symbol_id,
        symbol=sig.symbol,
        market=sig.market,
        side=Side(sig.type.lower()),
        signal_time=datetime.fromtimestamp(sig.ts, UTC),
        price=sig.price,
        atr=d.get("atr"),
        stop_multiplier=float(d.get("atr_stop_multiplier", 1.5)),
        target_multiplier=float(d.get("atr_target_multiplier", 3.0)),
        risk_pct=limits.risk_pct,
        reason=str(d.get("reason", strategy.name)),
        price_time=None if sig.price_time is None else datetime.fromtimestamp(sig.price_time, UTC),
        max_positions=limits.max_positions,
        max_daily_loss_pct=limits.max_daily_loss_pct,
        increments=increments,
    )


def session_close(market: str, ts: float) -> float | None:
    """Close (epoch s) of the session open at ``ts``, None outside one."""
    moment = datetime.fromtimestamp(ts, UTC)
    try:
        bounds = session_bounds(market, moment.date())
    except (UnknownMarketError, ValueError):
        return None
    if bounds is None or not bounds[0].timestamp() <= ts < bounds[1].timestamp():
        return None
    return float(bounds[1].timestamp())


def _mark(trade: Trade, c: Candles, t: float) -> float:
    """Open P&L of a position at ``t`` from the close of the latest candle the engine
    reads then (the one of ``t``'s own minute, as for the signal's price)."""
    k = int(np.searchsorted(c.ts, t, side="right")) - 1
    if k < trade.fill.entry_index:
        return 0.0
    return trade.sign * (float(c.close[k]) - trade.fill.entry_price) * trade.fill.qty


def simulate(
    strategy: Strategy,
    signals: Sequence[Signal],
    candles: Mapping[int, Candles],
    configs: Mapping[tuple[int, str], SymbolConfig],
    account: Account,
    prints: Prints | None = None,
    increments: Mapping[int, Increments] | None = None,
) -> Book:
    """Trades of ``signals`` (``prints``: stored ticks for entries and ambiguous candles;
    ``increments``: each symbol's order steps by id, else its market's asset rule)."""
    steps = increments or {}
    book = Book()
    limits = Limits(account.min_balance, account.max_positions, account.max_daily_loss_pct)
    open_: list[Trade] = []
    realised = 0.0
    closed_before: list[tuple[float, float]] = []  # (exit ts, pnl)
    day = (float("nan"), account.capital)  # (UTC day start, equity then)
    for sig in sorted(signals, key=lambda s: (s.ts, s.symbol_id)):
        t = sig.ts
        still = []
        for tr in open_:
            if tr.exit_ts <= t:
                realised += tr.fill.pnl
                closed_before.append((tr.exit_ts, tr.fill.pnl))
            else:
                still.append(tr)
        open_ = still
        if t - t % DAY_S != day[0]:  # a new day: the previous day's closing equity
            start = t - t % DAY_S
            day = (start, account.capital + sum(p for ts, p in closed_before if ts <= start))
        why, trade = _one(strategy, sig, candles, configs, account, limits, open_, realised, t,
                          day[1], prints, steps.get(sig.symbol_id))  # fmt: skip
        if why is not None:
            book.block(why)
        elif trade is not None:
            open_.append(trade)
            book.trades.append(trade)
    return book


def _one(
    strategy: Strategy,
    sig: Signal,
    candles: Mapping[int, Candles],
    configs: Mapping[tuple[int, str], SymbolConfig],
    account: Account,
    limits: Limits,
    open_: list[Trade],
    realised: float,
    t: float,
    last_equity: float,
    prints: Prints | None,
    increments: Increments | None,
) -> tuple[str | None, Trade | None]:
    config = configs.get((sig.symbol_id, strategy.name))
    it = intent(strategy, sig, config, increments)
    steps = it.increments
    now = it.signal_time
    if not market_open(it.market, now):
        return "market_closed", None
    stale = price_gate(it.price_time, now, account.max_price_age_s)
    if stale:
        return stale, None
    if not parameters_ok(it):
        return "bad_parameters", None
    mults = (it.stop_multiplier, it.target_multiplier)
    bracket = None if it.atr is None else bracket_levels(it.side, it.price, it.atr, *mults, steps)
    if bracket is None:
        return "no_levels", None
    no_short = asset_gate(it.side, steps.crypto)
    if no_short:
        return no_short, None
    unrealised = sum(_mark(tr, candles[tr.signal.symbol_id], t) for tr in open_)
    equity = account.capital + realised + unrealised
    notional = sum(tr.fill.entry_price * tr.fill.qty for tr in open_)
    view = AccountView(
        equity=equity,
        last_equity=last_equity,
        buying_power=max(equity - notional, 0.0),
        shorting_enabled=account.shorting,
    )
    why = account_gate(it.side, view, limits, it.max_daily_loss_pct)
    if why:
        return why, None
    # an explicit backtest parameter, else the strategy's, else the account-wide setting
    risk = next(r for r in (account.risk_pct, it.risk_pct, account.default_risk_pct) if r)
    sized = position_size(view.equity, risk, it.price, bracket.stop, view.buying_power, steps)
    caps = (account.max_order_qty, account.max_order_notional)
    qty = cap_quantity(sized, it.price, *caps, steps)
    if qty <= 0 or not within_caps(qty, it.price, *caps):
        return ("size_zero" if sized <= 0 else "order_cap"), None
    holding = {tr.signal.symbol for tr in open_}
    mine = {tr.signal.symbol for tr in open_ if tr.signal.strategy_id == strategy.id}
    why = position_gate(it.symbol, holding, mine, limits.max_positions, it.max_positions)
    if why:
        return why, None
    c = candles[sig.symbol_id]
    start = entry_index(c.ts, t)
    if start is None:
        return "no_fill", None
    close_at = None
    if account.exit_at_session_close:
        close_at = session_close(sig.market, float(c.ts[start]))
    decide: Callable[[int], str | None] | None = None
    first = None
    if prints is not None:
        stored, sid, side, levels = prints, sig.symbol_id, it.side, (bracket.stop, bracket.target)
        first = stored.next_print(sid, t, float(c.ts[start]) + 60.0)

        def touched(j: int) -> str | None:
            return first_touch(stored.minute(sid, float(c.ts[j])), side, *levels)

        decide = touched

    fill = fill_trade(
        c, it.side, qty, bracket.stop, bracket.target, start, account.costs, close_at, decide,
        first,
    )  # fmt: skip
    return None, Trade(sig, it.side, bracket.stop, bracket.target, fill)
