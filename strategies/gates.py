"""The trader's risk gates as pure functions: each returns the reason to refuse, or None.

The trader (``trader.py``) runs them in this order and records the first reason as a
``blocked`` order; docs/trading-safety.md lists every reason with its setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime

from analytics.sessions import UnknownMarketError, in_session
from core.contracts import Side


@dataclass(frozen=True)
class AccountView:
    equity: float
    last_equity: float
    buying_power: float
    trading_blocked: bool = False
    account_blocked: bool = False
    shorting_enabled: bool = False

    @classmethod
    def from_numbers(cls, values: Mapping[str, float | bool]) -> AccountView:
        return cls(
            equity=float(values["equity"]),
            last_equity=float(values["last_equity"]),
            buying_power=float(values["buying_power"]),
            trading_blocked=bool(values.get("trading_blocked", False)),
            account_blocked=bool(values.get("account_blocked", False)),
            shorting_enabled=bool(values.get("shorting_enabled", False)),
        )


@dataclass(frozen=True)
class Limits:
    """Account-wide limits (from the settings)."""

    min_balance: float
    max_positions: int
    max_daily_loss_pct: float


def account_gate(
    side: Side, account: AccountView, limits: Limits, strategy_daily_loss_pct: float | None = None
) -> str | None:
    """The first account-level reason to refuse a new position, or None.

    The daily-loss gate blocks when it cannot be computed: an equity or a previous-day
    equity that is missing, NaN or not positive is ``equity_unknown``, never a pass.
    A strategy's own ``max_daily_loss_pct`` applies when stricter than the account's."""
    if account.account_blocked:
        return "account_blocked"
    if account.trading_blocked:
        return "trading_blocked"
    if not account.equity >= limits.min_balance:  # NaN equity blocks too
        return "min_balance"
    if not (math.isfinite(account.last_equity) and account.last_equity > 0):
        return "equity_unknown"
    if not (math.isfinite(account.equity) and account.equity > 0):
        return "equity_unknown"
    allowed = limits.max_daily_loss_pct
    if strategy_daily_loss_pct is not None:
        allowed = min(allowed, strategy_daily_loss_pct)
    day_pct = (account.equity - account.last_equity) / account.last_equity * 100.0
    if day_pct < -allowed:
        return "daily_loss"
    if side is Side.SELL and not account.shorting_enabled:
        return "shorting_disabled"
    return None


def asset_gate(side: Side, increments_crypto: bool) -> str | None:
    """``no_crypto_short``: a crypto pair cannot be sold short at Alpaca (there is no
    margin on crypto), so a sell signal without a position opens nothing."""
    if increments_crypto and side is Side.SELL:
        return "no_crypto_short"
    return None


def position_gate(
    symbol: str,
    holding: Set[str],
    strategy_holding: Set[str],
    max_positions: int,
    strategy_max_positions: int | None,
) -> str | None:
    """Positions: ``holding`` is every symbol with a broker position or one of our pending
    entries; ``strategy_holding`` the part of it that this strategy opened. One position
    per symbol, at most ``max_positions`` in the account and ``strategy_max_positions``
    for the strategy (``strategy_configs.max_positions`` of the symbol, else the
    definition's ``max_positions``)."""
    if symbol in holding:
        return "position_open"
    if len(holding) >= max_positions:
        return "max_positions"
    if strategy_max_positions is not None and len(strategy_holding) >= strategy_max_positions:
        return "strategy_max_positions"
    return None


def price_gate(price_time: datetime | None, now: datetime, max_age_s: float) -> str | None:
    """``stale_price`` when the price an order would be sized from is older than allowed
    (or of unknown age, or from the future beyond a second of clock skew)."""
    if price_time is None:
        return "stale_price"
    age = (now - price_time).total_seconds()
    if age > max_age_s or age < -1.0:
        return "stale_price"
    return None


def market_open(market: str, now: datetime) -> bool:
    """Trading fails closed: an unknown market or a time outside its calendar is closed."""
    try:
        return in_session(market, now)
    except (UnknownMarketError, ValueError):
        return False
