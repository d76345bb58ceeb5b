"""IG Level 1 snapshots → events, and the choice of an epic among search results. Pure.

IG's REST snapshot (``GET /markets/{epic}``, v3) is a quote, not a print: ``bid``/``offer``,
``marketStatus`` and ``updateTime`` (a wall-clock ``HH:MM:SS`` without a date or zone). It
becomes a ``Quote`` and a *quote tick*: a ``Trade`` of size 0 at the mid with the bid/ask
kept and condition ``"quote"``, so candles follow the market while volume stays honest (IG
publishes no traded volume for CFDs/spread bets). The event time is when we received the
snapshot (UTC): ``updateTime`` has no date and its zone depends on the account.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.events import Quote, Trade

QUOTE_CONDITION = "quote"
TRADEABLE = "TRADEABLE"
LIVE_URL = "https://api.ig.com/gateway/deal"
DEMO_URL = "https://demo-api.ig.com/gateway/deal"


def base_url(override: str | None, demo: bool) -> str:
    return (override or (DEMO_URL if demo else LIVE_URL)).rstrip("/")


@dataclass(frozen=True, slots=True)
class Snapshot:
    epic: str
    bid: float | None
    offer: float | None
    status: str
    update_time: str


def _price(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    # untrusted input: float() raises on what it cannot read, handled below
    price = float(value)  # type: ignore[arg-type]
    return price if math.isfinite(price) else None


def parse_market(payload: object, epic: str) -> Snapshot:
    """The snapshot of a ``GET /markets/{epic}`` answer; ValueError when it has none."""
    if not isinstance(payload, Mapping):
        raise ValueError("answer is not an object")
    snap = payload.get("snapshot")
    if not isinstance(snap, Mapping):
        raise ValueError("answer has no snapshot")
    instrument = payload.get("instrument")
    if isinstance(instrument, Mapping) and isinstance(instrument.get("epic"), str):
        epic = instrument["epic"]
    try:
        bid, offer = _price(snap.get("bid")), _price(snap.get("offer"))
    except (TypeError, ValueError, OverflowError):
        raise ValueError("bid/offer not numbers") from None
    return Snapshot(
        epic=epic,
        bid=bid,
        offer=offer,
        status=str(snap.get("marketStatus") or "UNKNOWN"),
        update_time=str(snap.get("updateTime") or ""),
    )


def quote_events(symbol: str, snap: Snapshot, received: datetime) -> tuple[Quote, Trade] | None:
    """A tradeable two-sided snapshot as (Quote, quote tick); None when there is no market."""
    if snap.status != TRADEABLE or snap.bid is None or snap.offer is None:
        return None
    if snap.bid <= 0 or snap.offer <= 0 or snap.offer < snap.bid:
        return None
    mid = (snap.bid + snap.offer) / 2.0
    quote = Quote(symbol=symbol, ts=received, bid=snap.bid, ask=snap.offer)
    tick = Trade(
        symbol=symbol,
        ts=received,
        price=mid,
        size=0.0,
        # one id per IG price update: the same update polled twice is the same tick
        trade_id=f"ig:{snap.epic}:{received:%Y%m%d}T{snap.update_time.replace(':', '')}",
        exchange="IG",
        conditions=(QUOTE_CONDITION,),
        bid=snap.bid,
        ask=snap.offer,
    )
    return quote, tick


def search_term(symbol: str) -> str:
    """What to search IG for: LSE tickers without ``.L``, indices without ``^``."""
    term = symbol.upper()
    if term.endswith(".L"):
        term = term[:-2]
    return term.lstrip("^")


def choose_epic(symbol: str, markets: Sequence[Mapping[str, Any]]) -> str | None:
    """Among ``GET /markets?searchTerm=`` results: a share whose name contains the term,
    else an index (``IX.`` epic), else the first hit."""
    term = search_term(symbol)
    epics = [m for m in markets if isinstance(m, Mapping) and isinstance(m.get("epic"), str)]
    for market in epics:
        name = str(market.get("instrumentName", "")).upper()
        if market.get("instrumentType") == "SHARES" and term in name.replace(" ", ""):
            return market["epic"]
    for market in epics:
        if market["epic"].startswith("IX."):
            return market["epic"]
    return epics[0]["epic"] if epics else None
