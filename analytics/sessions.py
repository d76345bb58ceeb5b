"""Market sessions from exchange calendars (docs/semantics.md).

A market is an exchange-calendar code: ``XNYS`` (US equities, America/New_York
09:30–16:00 with holidays and early closes), ``XLON`` (LSE, Europe/London 08:00–16:30) or
``24/7`` (crypto replays: the UTC day). Storage and partitions are UTC days; every
supported session lies inside one UTC day, so a day maps to at most one session.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

import pandas as pd

ALWAYS_OPEN = "24/7"
DEFAULT_MARKET = "XNYS"

_TIMEZONES: dict[str, str] = {
    "XNYS": "America/New_York",
    "XLON": "Europe/London",
    ALWAYS_OPEN: "UTC",
}

SUPPORTED_MARKETS: tuple[str, ...] = tuple(_TIMEZONES)


class UnknownMarketError(ValueError):
    pass


def _check(market: str) -> str:
    if market not in _TIMEZONES:
        raise UnknownMarketError(
            f"unknown market {market!r}; supported: {', '.join(SUPPORTED_MARKETS)}"
        )
    return market


def market_timezone(market: str) -> str:
    """IANA timezone to display the market's times in."""
    return _TIMEZONES[_check(market)]


@cache
def _calendar(market: str):  # exchange_calendars.ExchangeCalendar (import kept lazy)
    import exchange_calendars

    return exchange_calendars.get_calendar(market)


def load_calendar(market: str) -> None:
    """Load ``market``'s calendar now (about half a second, once per process), so an event
    loop can do it in a thread before its first session check."""
    if _check(market) != ALWAYS_OPEN:
        _calendar(market)


def session_bounds(
    market: str, day: date | datetime | str
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(open, close) in UTC of ``market``'s session on ``day``; None when it does not trade.

    ``day`` is the session date (a UTC partition day is the same date for every supported
    market). Early closes and holidays come from the calendar; ``24/7`` is the UTC day
    [00:00, next 00:00). Raises ValueError for a day outside the calendar's range.
    """
    _check(market)
    session = pd.Timestamp(day)
    if session.tzinfo is not None:
        session = session.tz_convert("UTC").tz_localize(None)
    session = session.normalize()
    if market == ALWAYS_OPEN:
        start = session.tz_localize("UTC")
        return start, start + pd.Timedelta(days=1)
    calendar = _calendar(market)
    if not calendar.first_session <= session <= calendar.last_session:
        raise ValueError(
            f"{session.date()} is outside the {market} calendar "
            f"({calendar.first_session.date()} … {calendar.last_session.date()})"
        )
    if not calendar.is_session(session):
        return None
    return calendar.session_open(session), calendar.session_close(session)


def in_session(market: str, now: datetime) -> bool:
    """Whether ``market`` is in its session at ``now`` (aware). Raises ValueError for a time
    outside the calendar's range: the caller decides which way to fail."""
    if _check(market) == ALWAYS_OPEN:
        return True
    bounds = session_bounds(market, pd.Timestamp(now).tz_convert("UTC").date())
    return bounds is not None and bounds[0] <= now < bounds[1]


def sessions_between(market: str, start: date, end: date) -> list[date]:
    """Session dates of ``market`` in [start, end] (inclusive), oldest first."""
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    return [d.date() for d in days if session_bounds(market, d) is not None]
