"""Nanosecond timestamps: the unit ingest, storage and analytics pass prints around in."""

from __future__ import annotations

from datetime import UTC, datetime

NS = 1_000_000_000
MINUTE_NS = 60 * NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(ts_ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ts_ns // NS, tz=UTC).replace(microsecond=(ts_ns % NS) // 1000)


def to_ns(ts: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch (exact to the microsecond)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000
