"""Clock-driven runs: the dbt signal marts every five minutes while a market is in session,
and the daily tick archive.

The minute runs (candles, profiles, order flow) are not clock-driven any more: the tick
sensor requests them, at most one a minute (orchestration/sensors.py). The marts stay on a
schedule: they read the engine's tables too (signals, market state), which no sensor sees,
and a five-minute rebuild is what the dashboard's watchlist needs (docs/signal-marts.md).

The marts' 136 dbt data tests (Dagster asset checks, three events each) run with the first
rebuild of every hour; the other eleven rebuild the models only. Testing them every five
minutes made four fifths of the instance's event log (docs/operations.md).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from analytics.sessions import UnknownMarketError, session_bounds
from assets.dbt_marts import signal_marts
from assets.maintenance import days_to_archive
from assets.partitions import PARTITION_FORMAT, history_start, partition_key_for
from assets.resources import PostgresResource
from orchestration.jobs import signals_job, tick_archive_job

MARTS_EVERY_MINUTES = 5
# the rebuild whose tick falls in the first five minutes of an hour also runs the tests
TESTS_EVERY_MINUTES = MARTS_EVERY_MINUTES


def closed_minute(scheduled: datetime) -> datetime:
    """The minute that just closed when a tick fires at `scheduled` (its partition is the
    one to rebuild: at 00:00 UTC that is yesterday's last minute)."""
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


def with_tests(scheduled: datetime) -> bool:
    """Whether the marts rebuild at `scheduled` runs the dbt data tests too: once an hour."""
    return scheduled.astimezone(UTC).minute < TESTS_EVERY_MINUTES


def active_markets(conn: psycopg.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("select distinct market from symbols where active")}


@dg.schedule(
    job=signals_job,
    cron_schedule=f"*/{MARTS_EVERY_MINUTES} * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every five minutes while a market is in session: rebuild the dbt signal marts of the "
        "partition of the minute that just closed (the tick at a session's close finalises it); "
        "their dbt data tests run with the first rebuild of each hour."
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
    if with_tests(scheduled):
        return dg.RunRequest(
            run_key=f"signals:{minute:%Y-%m-%dT%H:%M}", partition_key=partition_key_for(minute)
        )
    return dg.RunRequest(
        run_key=f"signals:{minute:%Y-%m-%dT%H:%M}",
        partition_key=partition_key_for(minute),
        # every mart, none of its checks: dagster-dbt then leaves the tests out of the build
        asset_selection=list(signal_marts.keys),
        asset_check_keys=[],
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
