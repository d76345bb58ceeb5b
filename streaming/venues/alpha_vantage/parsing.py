"""Alpha Vantage TIME_SERIES_INTRADAY answers and the free tier's request budget. Pure.

Timestamps in the answer are wall-clock times in the zone named by the meta data
(``"6. Time Zone": "US/Eastern"``); they are localised with that zone's rules for that date,
so 09:30 is 14:30 UTC in winter and 13:30 UTC in summer (storing them as if UTC would be 4–5 h off).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.events import Bar

DEFAULT_ZONE = "US/Eastern"
# The answers Alpha Vantage gives instead of data; all arrive with HTTP 200.
THROTTLE_KEYS = ("Note", "Information")
ERROR_KEY = "Error Message"


class Answer(Enum):
    BARS = "bars"
    THROTTLED = "throttled"  # Note / Information: over the call frequency or the daily cap
    ERROR = "error"  # Error Message: the call itself is wrong (symbol, function, key)
    MALFORMED = "malformed"


@dataclass
class Parsed:
    answer: Answer
    bars: list[Bar] = field(default_factory=list)
    message: str = ""
    rejects: list[tuple[str, object]] = field(default_factory=list)  # (reason, sample)


def _find_key(mapping: Mapping[str, Any], needle: str) -> str | None:
    return next((k for k in mapping if needle in k), None)


def _zone(meta: Mapping[str, Any]) -> ZoneInfo:
    key = _find_key(meta, "Time Zone")
    name = str(meta.get(key, DEFAULT_ZONE)) if key else DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):  # garbage names hit the FS
        return ZoneInfo(DEFAULT_ZONE)


def local_to_utc(stamp: str, zone: ZoneInfo) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` wall time in ``zone`` → aware UTC (DST by that date's rules)."""
    fmt = "%Y-%m-%d %H:%M:%S" if stamp.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(stamp, fmt).replace(tzinfo=zone).astimezone(UTC)


def _field(row: Mapping[str, Any], name: str) -> float:
    key = _find_key(row, name)
    if key is None:
        raise ValueError(f"{name} missing")
    value = float(row[key])
    if not math.isfinite(value):
        raise ValueError(f"{name} not finite")
    return value


def parse_intraday(payload: object, symbol: str) -> Parsed:
    """Classify an answer and, for data, return its bars oldest first (UTC minute starts)."""
    if not isinstance(payload, Mapping):
        return Parsed(Answer.MALFORMED, message="answer is not a JSON object")
    series_key = _find_key(payload, "Time Series")
    if series_key is None:
        for key in THROTTLE_KEYS:
            if key in payload:
                return Parsed(Answer.THROTTLED, message=str(payload[key])[:300])
        if ERROR_KEY in payload:
            return Parsed(Answer.ERROR, message=str(payload[ERROR_KEY])[:300])
        return Parsed(Answer.MALFORMED, message=f"no time series (keys {sorted(payload)[:5]})")
    series = payload[series_key]
    if not isinstance(series, Mapping):
        return Parsed(Answer.MALFORMED, message="time series is not an object")
    meta = payload.get(_find_key(payload, "Meta Data") or "", {})
    zone = _zone(meta if isinstance(meta, Mapping) else {})
    parsed = Parsed(Answer.BARS)
    for stamp, row in series.items():
        try:
            if not isinstance(row, Mapping):
                raise ValueError("row is not an object")
            bar = Bar(
                symbol=symbol,
                ts=local_to_utc(str(stamp), zone),
                open=_field(row, "open"),
                high=_field(row, "high"),
                low=_field(row, "low"),
                close=_field(row, "close"),
                volume=_field(row, "volume"),
            )
        except (ValueError, TypeError, OverflowError):
            parsed.rejects.append(("malformed_bar", {stamp: row}))
            continue
        parsed.bars.append(bar)
    parsed.bars.sort(key=lambda b: b.ts)  # the API lists newest first
    return parsed


def new_closed_bars(bars: list[Bar], after: datetime | None, now: datetime) -> list[Bar]:
    """Bars newer than ``after`` whose minute has ended (the newest may still be forming)."""
    return [
        b for b in bars if (after is None or b.ts > after) and b.ts + timedelta(minutes=1) <= now
    ]


class RequestBudget:
    """Rolling windows for a per-minute and a per-day cap. Rolling (not calendar) windows
    can never exceed a calendar-day cap, whatever time of day the vendor resets it."""

    def __init__(self, per_minute: int, per_day: int) -> None:
        self.per_minute = max(1, per_minute)
        self.per_day = max(1, per_day)
        self._times: deque[float] = deque()

    def wait_seconds(self, now: float) -> float:
        """Seconds until one more request fits both windows (0 when it fits now)."""
        while self._times and self._times[0] <= now - 86_400:
            self._times.popleft()
        wait = 0.0
        if len(self._times) >= self.per_day:
            wait = self._times[len(self._times) - self.per_day] + 86_400 - now
        recent = [t for t in self._times if t > now - 60]
        if len(recent) >= self.per_minute:
            wait = max(wait, recent[len(recent) - self.per_minute] + 60 - now)
        return max(0.0, wait)

    def record(self, now: float) -> None:
        self._times.append(now)


def default_interval(per_minute: int, per_day: int) -> float:
    """Seconds between requests that spend the daily budget evenly over 24 h."""
    return max(60.0 / max(1, per_minute), 86_400.0 / max(1, per_day))
