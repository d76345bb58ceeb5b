"""The one partitions definition: calendar days in UTC, shared by every asset.

See docs/architecture.md.

Every supported market's session falls inside one UTC day, so the run for day D computes the
session of every symbol whose market trades on D; weekend partitions are cheap no-ops for
equities and real days for crypto. Python assets and dbt models use this same definition so a
backfill selects matching windows on both sides.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg


def history_start() -> date:
    """The first partition day: MARKETFLOW_HISTORY_START (core.settings, default 2010-01-01).

    Dagster definitions, the tick sensor (through `daily_partitions`) and every dbt run
    (`dbt_history_env`) read this one value; a partition that holds no ticks costs one cheap
    query, so an early start is harmless.
    """
    from core.settings import get_settings

    return get_settings().history_start


# the environment variable dbt's `history_start()` macro reads (dbt_project/macros)
HISTORY_START_ENV = "MARKETFLOW_HISTORY_START"
PARTITIONS_START = history_start().isoformat()


def dbt_history_env() -> dict[str, str]:
    """The history start for a dbt process, so its default window starts where Dagster's does."""
    return {HISTORY_START_ENV: PARTITIONS_START}


daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START,
    timezone="UTC",
    # The last partition of a daily definition is normally yesterday (the last *complete* day);
    # the stream fills today's partition minute by minute, so today must exist.
    end_offset=1,
)

PARTITION_FORMAT = "%Y-%m-%d"


def partition_key_for(moment: datetime) -> str:
    """The partition (UTC day) that holds an instant."""
    if moment.tzinfo is None:
        raise ValueError("partition_key_for needs an aware datetime")
    return moment.astimezone(UTC).strftime(PARTITION_FORMAT)


def partition_keys_between(first: datetime, last: datetime) -> list[str]:
    """Every partition key from the day of `first` to the day of `last`, inclusive."""
    day = first.astimezone(UTC).date()
    end = last.astimezone(UTC).date()
    keys: list[str] = []
    while day <= end:
        keys.append(day.strftime(PARTITION_FORMAT))
        day += timedelta(days=1)
    return keys


def window_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days of a half-open partition window [start, end) (one or several days)."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def dbt_vars_for_window(start: datetime, end: datetime) -> dict[str, str]:
    """dbt vars selecting the same window as a partition (or single-run range) in Dagster.

    `min_date` is inclusive and `max_date` exclusive, both UTC dates, so the models filter
    `session_date >= min_date and session_date < max_date` (or the same on a timestamp).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("partition windows are aware datetimes")
    if end <= start:
        raise ValueError(f"empty partition window {start} .. {end}")
    days = window_days(start, end)
    return {
        "min_date": days[0].isoformat(),
        "max_date": (days[-1] + timedelta(days=1)).isoformat(),
    }


# Run tag of the frequent runs: the earliest minute whose rows can have changed. Sensor runs
# set it from the first new tick, minute-schedule runs from the minute that just closed
# (minus a margin). The profile asset still computes its whole window (cheap, vectorised)
# but rewrites only the rows from that minute on; candles reconcile only from there. Runs
# without it (backfills, the schedule's fallback, the UI) rewrite the whole window.
WRITE_FROM_TAG = "marketflow/write_from"


def write_from_tag(value: str | None) -> datetime | None:
    """The tag's instant, floored to its minute (None when absent or unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.replace(second=0, microsecond=0)
