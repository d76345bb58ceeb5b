"""Normalised market events every provider yields and the ingest path consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Trade:
    """One print. ``ts`` is timezone-aware UTC; ``side`` is the venue's aggressor (+1 buy,
    -1 sell) when it gives one; ``bid``/``ask`` the quote in force when known. ``source`` and
    ``feed`` are its provenance (``core.contracts.TickSource``, docs/history.md) when the
    provider sets them per print (the Alpaca gap fill); else the provider's own apply."""

    symbol: str
    ts: datetime
    price: float
    size: float
    trade_id: str | None = None
    exchange: str | None = None
    conditions: tuple[str, ...] = ()
    side: int | None = None
    bid: float | None = None
    ask: float | None = None
    source: str | None = None
    feed: str | None = None


@dataclass(slots=True)
class Quote:
    symbol: str
    ts: datetime
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0


@dataclass(slots=True)
class Bar:
    """A provider's 1-minute bar (bar-only providers such as Alpha Vantage)."""

    symbol: str
    ts: datetime  # minute start, UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int = 0


@dataclass(slots=True)
class TradeAmendment:
    """A venue's correction or cancel of a print it sent before (docs/corrections.md).

    ``trade_id`` names the amended print as ``Trade.trade_id`` named it (exchange-prefixed
    for Alpaca stocks); ``price``/``size``/``conditions`` are the original as the venue
    reports it. A correction (``kind`` ``correction``) replaces that print with the
    ``corrected_*`` one; a cancel or error (``cancel``, ``error``) removes it. ``ts`` is the
    time the venue put on the message."""

    symbol: str
    ts: datetime
    kind: str
    trade_id: str
    price: float | None = None
    size: float | None = None
    conditions: tuple[str, ...] = ()
    corrected_trade_id: str | None = None
    corrected_price: float | None = None
    corrected_size: float | None = None
    corrected_conditions: tuple[str, ...] = ()
    exchange: str | None = None
    tape: str | None = None


AMENDMENT_KINDS = ("correction", "cancel", "error")

Event = Trade | Quote | Bar | TradeAmendment


@dataclass
class Rejects:
    """Bad input counted per reason with one sample each: skipped, never silently lost."""

    source: str
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, sample: object = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if reason not in self.samples:
            self.samples[reason] = repr(sample)[:300]

    @property
    def total(self) -> int:
        return sum(self.counts.values())
