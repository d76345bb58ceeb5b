"""`tick_stream_sensor`: the one trigger of the minute runs (candles, profiles, order flow).

The stream itself is a plain asyncio process (ingest); the sensor only reads how far it got:
one indexed query over `ticks.seq > cursor`, so an evaluation stays in the milliseconds
whatever the stream's rate (a sensor that consumed a socket would hang the daemon).

Why one trigger (docs/operations.md, "Dagster at month scale"): a tick sensor requesting a
profile run per evaluation beside a minute schedule reconciling candles started about
7,000 runs a day. Now each partition gets at most one `minute_job` run per wall-clock
minute, and none while no tick arrives:

- ticks arrived after the cursor → one run of `minute_job` (candles of the closed minutes
  from `write_from`, then the profiles resumed from their stored state);
- a run of that partition is in flight, or was already requested this minute → wait, the
  cursor stays, so the ticks are requested with the next run and none is lost;
- ticks of the minute still open stay "new" (the cursor stops before them): their candle
  can be reconciled only once the minute closed, so the first evaluation after it asks for
  one more run even when the stream has gone quiet; after that, nothing.

A venue's correction or cancel of a stored print takes its number from the same sequence
(`tick_corrections.seq`), so the amended print's minute is requested like a late print
(docs/corrections.md).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from assets.partitions import WRITE_FROM_TAG, daily_partitions, partition_keys_between
from assets.resources import PostgresResource
from orchestration.jobs import minute_job

# How often the daemon evaluates: a minute's run starts at most this long after it closed.
SENSOR_INTERVAL_SECONDS = 15
# A replay of more days than this in one go is a backfill's job, not the sensor's.
MAX_PARTITIONS_PER_EVALUATION = 31
# Minutes before the first new print that are rewritten too: prints of concurrent writers
# can commit after a later sequence number was already visible, and late prints into the
# last closed minutes are caught (what the minute schedule's five-minute window used to do).
WRITE_FROM_MARGIN = timedelta(minutes=5)
PARTITION_TAG = "dagster/partition"
IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)


@dataclass(frozen=True)
class TickProgress:
    """What arrived after the cursor: rows, newest sequence, first and last tick time, and
    the first sequence of a tick in the minute still open (None: no such tick)."""

    rows: int
    max_seq: int
    first_ts: datetime | None
    last_ts: datetime | None
    open_minute_seq: int | None = None

    def next_cursor(self, cursor: int) -> int:
        """Where the cursor moves once these ticks are requested: past all of them, or just
        before the first one whose minute has not closed yet (it is requested again). With
        no row to profile, past whatever else was stored (the history backfill's rows)."""
        if self.rows == 0:
            return max(cursor, self.max_seq)
        if self.open_minute_seq is not None:
            return max(cursor, self.open_minute_seq - 1)
        return self.max_seq


def minute_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


# Rows the history backfill stored are profiled by the backfill's own run (tick_history is
# upstream of the profiles, docs/history.md): the cursor passes them, runs are not requested.
# An applied correction or cancel counts at the amended print's time (docs/corrections.md).
# The last column: the first sequence of a tick in the minute still open (`open`).
TICK_PROGRESS_SQL = """
select count(*) filter (where source <> 'backfill'), coalesce(max(seq), %(after)s),
       min(ts) filter (where source <> 'backfill'), max(ts) filter (where source <> 'backfill'),
       min(seq) filter (
           where source <> 'backfill' and ts >= %(open)s and ts < %(open)s + interval '1 minute'
       )
from (
    select seq, ts, source from ticks where seq > %(after)s
    union all
    select seq, tick_ts, 'amendment' from tick_corrections
    where seq > %(after)s and outcome = 'applied'
) as changed
"""


def tick_progress(
    conn: psycopg.Connection, after_seq: int, now: datetime | None = None
) -> TickProgress:
    """New prints and amended ones (at the amended print's time) after `after_seq`; "open
    minute" is the minute of `now` (default: now)."""
    open_from = minute_start(now or datetime.now(UTC))
    row = conn.execute(TICK_PROGRESS_SQL, {"after": after_seq, "open": open_from}).fetchone()
    assert row is not None
    open_seq = int(row[4]) if row[4] is not None else None
    return TickProgress(int(row[0]), int(row[1]), row[2], row[3], open_seq)


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


def wait_reason(status: dg.DagsterRunStatus, created: datetime, now: datetime) -> str | None:
    """Why a partition whose newest minute run has `status` and was created at `created`
    gets no new run at `now` (None: it may have one)."""
    if status in IN_FLIGHT:
        return "run in flight"
    if created >= minute_start(now):
        return "ran this minute"
    return None


def partition_wait(instance: dg.DagsterInstance, partition_key: str, now: datetime) -> str | None:
    records = instance.get_run_records(
        dg.RunsFilter(job_name=minute_job.name, tags={PARTITION_TAG: partition_key}), limit=1
    )
    if not records:
        return None
    record = records[0]
    return wait_reason(record.dagster_run.status, record.create_timestamp, now)


@dg.sensor(
    job=minute_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Cursor over ticks.seq: at most one minute_job run per partition and wall-clock "
        "minute (candles of the closed minutes, then profiles and order flow), none while "
        "no tick arrives."
    ),
)
def tick_stream_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    cursor = parse_cursor(context.cursor)
    now = datetime.now(UTC)
    with postgres.connect(read_only=True) as conn:
        progress = tick_progress(conn, cursor, now)
    if progress.rows == 0:
        # past whatever the backfill stored meanwhile (max_seq is the cursor when nothing)
        return dg.SensorResult(skip_reason="no new ticks", cursor=str(progress.next_cursor(cursor)))
    keys = partitions_for(progress, now)
    waits = {key: partition_wait(context.instance, key, now) for key in keys}
    waiting = {key: reason for key, reason in waits.items() if reason is not None}
    if waiting:
        # Keep the cursor: the rows stay "new" and are requested with the next run, instead
        # of piling up runs that each redo the partition's last minutes.
        reasons = ", ".join(f"{key}: {reason}" for key, reason in waiting.items())
        return dg.SensorResult(skip_reason=f"waiting ({reasons})", cursor=str(cursor))
    # Minutes before the first new tick keep their rows (docs/profiles-incremental.md).
    assert progress.first_ts is not None
    write_from = (progress.first_ts - WRITE_FROM_MARGIN).isoformat()
    requests = [
        # the same cursor never requests the same run twice; a cursor left before the open
        # minute's ticks gets a new key when that minute's run is asked for
        dg.RunRequest(
            run_key=f"ticks:{key}:{cursor}:{progress.max_seq}",
            partition_key=key,
            tags={WRITE_FROM_TAG: write_from},
        )
        for key in keys
    ]
    if not requests:
        context.log.warning(
            "new ticks fall outside every partition: %s .. %s", progress.first_ts, progress.last_ts
        )
    return dg.SensorResult(run_requests=requests, cursor=str(progress.next_cursor(cursor)))
