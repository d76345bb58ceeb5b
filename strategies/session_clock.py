"""Which session a symbol is "in" right now, in its market's own calendar (docs/semantics.md).

The engine keys everything session-scoped (the session profile it trusts, the session
VWAP) on the symbol's *current session*: the latest session of its market that opened at
or before ``now``. During the session, in the after-hours that follow it (even past
midnight UTC), overnight, over a weekend or a holiday, the current session stays the last
one that opened, until the next open. The 24/7 market's session is the UTC day.

Pure and cached per (market, market-local day): a tick asks once per market, not per
symbol, and the calendar is consulted once per market per day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from analytics.sessions import UnknownMarketError, market_timezone, session_bounds

# longest run of days without a session the calendars have (a long holiday + weekend)
LOOKBACK_DAYS = 10


@dataclass(frozen=True)
class CurrentSession:
    day: date  # the session date in the market's calendar
    open: datetime  # UTC
    close: datetime  # UTC
    previous_open: datetime | None  # the session before, UTC (None when not found)


@lru_cache(maxsize=256)
def _recent(market: str, local_day: date) -> tuple[tuple[date, datetime, datetime], ...]:
    """Sessions of ``market`` from ``local_day`` back LOOKBACK_DAYS days, newest first."""
    out = []
    for back in range(LOOKBACK_DAYS + 1):
        day = local_day - timedelta(days=back)
        try:
            bounds = session_bounds(market, day)
        except ValueError:  # outside the calendar's range
            continue
        if bounds is not None:
            out.append((day, bounds[0].to_pydatetime(), bounds[1].to_pydatetime()))
    return tuple(out)


def current_session(market: str, now: datetime) -> CurrentSession | None:
    """The latest session of ``market`` that opened at or before ``now`` (tz-aware).

    None for an unknown market or when no session opened in the last LOOKBACK_DAYS days
    (outside the calendar's range).
    """
    try:
        tz = ZoneInfo(market_timezone(market))
    except UnknownMarketError:
        return None
    sessions = [s for s in _recent(market, now.astimezone(tz).date()) if s[1] <= now]
    if not sessions:
        return None
    day, opened, closed = sessions[0]
    previous = sessions[1][1] if len(sessions) > 1 else None
    return CurrentSession(day, opened, closed, previous)


def session_opens(markets: Iterable[str], now: datetime) -> list[datetime | None]:
    """The open of the current session of each market (None where there is none), one
    calendar look-up per distinct market."""
    starts: list[datetime | None] = []
    cache: dict[str, datetime | None] = {}
    for market in markets:
        if market not in cache:
            # the symbol's own session, not the UTC date: US after-hours run past
            # midnight UTC and still belong to the session that opened that morning
            current = current_session(market, now)
            cache[market] = None if current is None else current.open
        starts.append(cache[market])
    return starts
