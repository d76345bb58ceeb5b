"""Clock-driven runs: the minute schedule (every 60 s) and the marts schedule.

Why the minute schedule does not duplicate the sensor: the sensor is *data*-driven (ticks
arrived → profile run), the schedule is *clock*-driven (a minute closed → reconcile the
candles of the last five closed minutes). Each run of the schedule therefore targets
`candles_1m` only. It adds the profile assets only as a fallback, when the newest ticks
of the partition are newer than what the last profile run saw *and* the oldest of those
ticks was stored more than PROFILE_LAG_GRACE ago — i.e. the sensor is stopped or stuck. A
working sensor never sees its runs repeated by the schedule.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from analytics.sessions import UnknownMarketError, session_bounds
from assets.maintenance import days_to_archive
from assets.market_data import candles_1m
from assets.partitions import (
    PARTITION_FORMAT,
    WRITE_FROM_TAG,
    daily_partitions,
    history_start,
    partition_key_for,
)
from assets.profiles import PROFILE_ASSETS, profiled_seq
from assets.resources import PostgresResource
from orchestration.jobs import minute_job, signals_job, tick_archive_job

# The sensor evaluates every 15 s and its run takes seconds: a tick stored two minutes ago
# that no profile run has seen means the sensor is not running.
PROFILE_LAG_GRACE = timedelta(minutes=2)
# closed minutes reconciled by each scheduled run, the current one included
RECONCILE_MINUTES = timedelta(minutes=4)


def closed_minute(scheduled: datetime) -> datetime:
    """The minute that just closed when a tick fires at `scheduled` (its partition is the
    one to reconcile: at 00:00 UTC that is yesterday's last minute)."""
    return scheduled.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def markets_in_session(markets: set[str], minute: datetime) -> list[str]:
    """The markets whose session contains `minute`."""
    open_markets = []
    for market in sorted(markets):
        try:
            bounds = session_bounds(market, minute.date())
        except UnknownMarketError:
            continue  # a misconfigured symbol; the profile run reports it
        if bounds is not None and bounds[0] <= minute < bounds[1]:
            open_markets.append(market)
    return open_markets


def active_markets(conn: psycopg.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("select distinct market from symbols where active")}


def oldest_waiting_tick(
    conn: psycopg.Connection, start: datetime, end: datetime, after_seq: int
) -> datetime | None:
    """When the oldest tick of the window that no profile run has seen was stored."""
    row = conn.execute(
        "select min(coalesce(received_at, ts)) from ticks where seq > %s and ts >= %s and ts < %s",
        (after_seq, start, end),
    ).fetchone()
    return row[0] if row else None


def profiles_lag(waiting_since: datetime | None, now: datetime) -> bool:
    """Ticks have waited for a profile run longer than the sensor ever needs."""
    return waiting_since is not None and now - waiting_since > PROFILE_LAG_GRACE


@dg.schedule(
    job=minute_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every minute while a market of an active symbol is in session: reconcile the closed "
        "minute's candles; profiles too only if the tick sensor has fallen behind."
    ),
)
def minute_schedule(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    minute = closed_minute(scheduled)
    with postgres.connect(read_only=True) as conn:
        open_markets = markets_in_session(active_markets(conn), minute)
        if not open_markets:
            return dg.SkipReason(f"no market in session at {minute:%Y-%m-%d %H:%M} UTC")
        key = partition_key_for(minute)
        window = daily_partitions.time_window_for_partition_key(key)
        seen = profiled_seq(context.instance, key) or 0
        waiting_since = oldest_waiting_tick(conn, window.start, window.end, seen)
    tags = {"marketflow/markets": ",".join(open_markets)}
    # wall clock, not the scheduled time: `received_at` is when ingest stored the tick
    if profiles_lag(waiting_since, datetime.now(UTC)):
        # the fallback rewrites the whole window: the sensor may have missed any minute
        selection = [candles_1m.key, *PROFILE_ASSETS]
    else:
        # the last five closed minutes, so a late print is still caught
        selection = [candles_1m.key]
        tags[WRITE_FROM_TAG] = (minute - RECONCILE_MINUTES).isoformat()
    return dg.RunRequest(
        run_key=f"minute:{minute:%Y-%m-%dT%H:%M}",
        partition_key=key,
        asset_selection=selection,
        tags=tags,
    )


@dg.schedule(
    job=signals_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every five minutes while a market is in session: rebuild the dbt signal marts of the "
        "partition of the minute that just closed (the tick at a session's close finalises it)."
    ),
)
def signals_schedule(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    minute = closed_minute(scheduled)
    with postgres.connect(read_only=True) as conn:
        if not markets_in_session(active_markets(conn), minute):
            return dg.SkipReason(f"no market in session at {minute:%Y-%m-%d %H:%M} UTC")
    return dg.RunRequest(
        run_key=f"signals:{minute:%Y-%m-%dT%H:%M}", partition_key=partition_key_for(minute)
    )


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.schedule(
    job=tick_archive_job,
    cron_schedule="17 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Daily at 02:17 UTC when TICK_RETENTION_DAYS is set: one run over the days older "
        "than the retention that PostgreSQL still holds (docs/retention.md)."
    ),
)
def tick_archive_schedule(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    from core.settings import get_settings
    from storage.tick_archive import TickArchive

    retention = get_settings().tick_retention_days
    if retention is None:
        return dg.SkipReason("TICK_RETENTION_DAYS is not set: every tick stays in PostgreSQL")
    runs = context.instance.get_runs(
        dg.RunsFilter(job_name=tick_archive_job.name, statuses=IN_FLIGHT), limit=1
    )
    if runs:
        return dg.SkipReason(f"an archive run is still going ({runs[0].run_id})")
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    with postgres.connect(read_only=True) as conn:
        days = days_to_archive(conn, TickArchive.configured(), scheduled.date(), retention)
    # days before the partitions' start are not Dagster partitions (docs/retention.md)
    days = [d for d in days if d >= history_start()]
    if not days:
        return dg.SkipReason(f"no stored tick day is older than {retention} days")
    # one single-run backfill over the range: already archived days in it are no-ops
    return dg.RunRequest(
        run_key=f"tick_archive:{scheduled:%Y-%m-%d}",
        tags={
            RANGE_START_TAG: days[0].strftime(PARTITION_FORMAT),
            RANGE_END_TAG: days[-1].strftime(PARTITION_FORMAT),
        },
    )
