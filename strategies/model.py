"""What a loaded strategy is: its kind, per-symbol config, trade limits and a candidate
signal (the vocabulary is described in ``strategies/__init__.py``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies.footprint import FOOTPRINT_TABLE_TERMS, FOOTPRINT_TERMS

PRICE_ABOVE_SMA = "price_above_sma"
AUCTION_MARKET = "auction_market"
RULES = "rules"
KINDS = (PRICE_ABOVE_SMA, AUCTION_MARKET, RULES)


class DefinitionError(ValueError):
    """A strategy definition the engine cannot run; the message says what is wrong."""


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    value: float | str | None = None
    ref: str | None = None
    period: int | None = None
    k: float | None = None  # standard deviations of a VWAP band ref
    seconds: int | None = None  # look-back of a big_print condition


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

    def footprint_terms(self) -> set[str]:
        """The footprint metrics and refs its conditions use (``footprint.FOOTPRINT_TERMS``)."""
        used = {c.metric for c in (*self.all, *self.any)} | {
            c.ref for c in (*self.all, *self.any) if c.ref
        }
        return used & FOOTPRINT_TERMS

    def uses_footprint(self) -> bool:
        """Whether it reads the footprint tables (IB levels come with the profile)."""
        return bool(self.footprint_terms() & FOOTPRINT_TABLE_TERMS)


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


def sma_periods(strategies: Iterable[Strategy]) -> frozenset[int]:
    return frozenset(p for s in strategies for p in s.sma_periods())
