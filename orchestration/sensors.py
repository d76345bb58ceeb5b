"""`tick_stream_sensor`: observes ingest progress and asks for profile runs of new data.

The stream itself is a plain asyncio process (ingest); the sensor only reads how far it got:
one indexed query over `ticks.seq > cursor`, so an evaluation stays in the milliseconds
whatever the stream's rate (a sensor that consumed a socket would hang the daemon).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg

from assets.market_data import TICKS
from assets.partitions import WRITE_FROM_TAG, daily_partitions, partition_keys_between
from assets.resources import PostgresResource
from orchestration.jobs import profile_job

SENSOR_INTERVAL_SECONDS = 15
# A replay of more days than this in one go is a backfill's job, not the sensor's.
MAX_PARTITIONS_PER_EVALUATION = 31
# The last five minutes are recomputed every minute, so late prints are caught.
WRITE_FROM_MARGIN = timedelta(minutes=5)
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class TickProgress:
    """What arrived after the cursor: rows, newest sequence, first and last tick time."""

    rows: int
    max_seq: int
    first_ts: datetime | None
    last_ts: datetime | None


# Rows the history backfill stored are profiled by the backfill's own run (tick_history is
# upstream of the profiles, docs/history.md): the cursor passes them, runs are not requested.
TICK_PROGRESS_SQL = """
select count(*) filter (where source <> 'backfill'), coalesce(max(seq), %(after)s),
       min(ts) filter (where source <> 'backfill'), max(ts) filter (where source <> 'backfill')
from ticks where seq > %(after)s
"""


def tick_progress(conn: psycopg.Connection, after_seq: int) -> TickProgress:
    row = conn.execute(TICK_PROGRESS_SQL, {"after": after_seq}).fetchone()
    assert row is not None
    return TickProgress(int(row[0]), int(row[1]), row[2], row[3])


def latest_tick_time(conn: psycopg.Connection) -> datetime | None:
    row = conn.execute("select ts from ticks order by seq desc limit 1").fetchone()
    return row[0] if row else None


def parse_cursor(cursor: str | None) -> int:
    try:
        return max(0, int(cursor)) if cursor else 0
    except ValueError:
        return 0  # an unreadable cursor re-reads everything once; runs are idempotent


def partitions_for(progress: TickProgress, now: datetime) -> list[str]:
    """The partitions the new ticks fall in, newest last, limited to existing partitions."""
    if progress.first_ts is None or progress.last_ts is None:
        return []
    # the bounds, not the set of every key: from a history start years back that set costs
    # tens of milliseconds per evaluation (ISO keys compare in date order)
    with dg.partition_loading_context(effective_dt=now):
        first = daily_partitions.get_first_partition_key()
        last = daily_partitions.get_last_partition_key()
    if first is None or last is None:
        return []
    keys = [
        k for k in partition_keys_between(progress.first_ts, progress.last_ts) if first <= k <= last
    ]
    return keys[-MAX_PARTITIONS_PER_EVALUATION:]


def _in_flight(instance: dg.DagsterInstance, partition_key: str) -> bool:
    records = instance.get_run_records(
        dg.RunsFilter(
            job_name=profile_job.name,
            statuses=IN_FLIGHT,
            tags={"dagster/partition": partition_key},
        ),
        limit=1,
    )
    return bool(records)


def observation(
    progress: TickProgress, last_ts: datetime | None, now: datetime
) -> dg.AssetObservation:
    metadata: dict[str, Any] = {"rows": progress.rows, "max_seq": progress.max_seq}
    if last_ts is not None:
        metadata["last_tick_time"] = dg.MetadataValue.timestamp(last_ts)
        metadata["lag_seconds"] = round((now - last_ts).total_seconds(), 3)
    return dg.AssetObservation(asset_key=TICKS, metadata=metadata)


@dg.sensor(
    job=profile_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Cursor over ticks.seq: observes `ticks` (rows, lag, last tick time) once per "
        "evaluation and requests a profile run for each partition that received ticks."
    ),
)
def tick_stream_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    cursor = parse_cursor(context.cursor)
    now = datetime.now(UTC)
    with postgres.connect(read_only=True) as conn:
        progress = tick_progress(conn, cursor)
        last_ts = progress.last_ts if progress.rows else latest_tick_time(conn)
    events = [observation(progress, last_ts, now)]
    if progress.rows == 0:
        # past whatever the backfill stored meanwhile (max_seq is the cursor when nothing)
        cursor_after = str(progress.max_seq)
        return dg.SensorResult(skip_reason="no new ticks", cursor=cursor_after, asset_events=events)
    keys = partitions_for(progress, now)
    busy = [key for key in keys if _in_flight(context.instance, key)]
    if busy:
        # Keep the cursor: the rows stay "new" and are requested once the run in flight is
        # done, instead of piling up runs that would each redo the whole day.
        return dg.SensorResult(
            skip_reason=f"profile run in flight for {', '.join(busy)}; waiting",
            cursor=str(cursor),
            asset_events=events,
        )
    # Minutes before the first new tick keep their rows; the margin covers prints that
    # committed after a later sequence number was already visible (concurrent writers).
    assert progress.first_ts is not None
    write_from = (progress.first_ts - WRITE_FROM_MARGIN).isoformat()
    requests = [
        # run_key = partition + cursor: the same cursor can never request the same run twice
        dg.RunRequest(
            run_key=f"ticks:{key}:{progress.max_seq}",
            partition_key=key,
            tags={WRITE_FROM_TAG: write_from},
        )
        for key in keys
    ]
    if not requests:
        context.log.warning(
            "new ticks fall outside every partition: %s .. %s", progress.first_ts, progress.last_ts
        )
    return dg.SensorResult(run_requests=requests, cursor=str(progress.max_seq), asset_events=events)
