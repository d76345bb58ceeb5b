"""Run retention: a daily job deletes the runs older than DAGSTER_RUN_RETENTION_DAYS.

Dagster keeps every run and every event of it forever; the instance's `retention:` setting
(marketflow/dagster_home.py) covers sensor and schedule ticks only. So `run_retention_job`,
launched once a day by `run_retention_schedule`, deletes finished runs created before the
cutoff through the public `DagsterInstance.delete_run` (the run, its tags and its events)
and the compute logs captured for them (docs/operations.md, "Dagster at month scale").

One kind of old run is kept: the one holding the latest materialization of an asset
partition. Dagster reads a partition's status and "latest materialization" from those
events, so deleting them would show last month's profiles as never built. That leaves
about one run per day and job, however many minute runs the day had.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.partitions import partition_keys_between
from orchestration.jobs import QUIET_CONSOLE

FINISHED = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BATCH = 200  # runs read per query


@dataclass
class RetentionResult:
    deleted: int = 0
    kept: int = 0  # older than the cutoff, but holding a latest materialization


def run_partitions(tags: dict[str, str]) -> list[str]:
    """The partition keys a run targeted: its partition, or every day of its range."""
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        with_day = [datetime.fromisoformat(k).replace(tzinfo=UTC) for k in (start, end)]
        return partition_keys_between(with_day[0], with_day[1])
    return []


class LatestMaterializations:
    """Which run holds the latest materialization of an asset partition (memoised)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._instance = instance
        self._keys = list(instance.get_asset_keys())
        self._runs: dict[str | None, set[str]] = {}

    def holders(self, partition: str | None) -> set[str]:
        """Run ids holding the latest materialization of some asset in `partition` (None:
        unpartitioned materializations)."""
        if partition not in self._runs:
            runs: set[str] = set()
            for key in self._keys:
                records = self._instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=key,
                        asset_partitions=[partition] if partition is not None else None,
                    ),
                    limit=1,
                ).records
                if records:
                    runs.add(records[0].run_id)
            self._runs[partition] = runs
        return self._runs[partition]

    def holds_latest(self, run_id: str, partitions: Iterable[str]) -> bool:
        keys: list[str | None] = [*partitions] or [None]
        return any(run_id in self.holders(key) for key in keys)


def runs_past_retention(
    instance: dg.DagsterInstance, cutoff: datetime, batch: int = BATCH
) -> tuple[list[str], int]:
    """(run ids to delete, runs kept): finished runs created before `cutoff`, except those
    holding the latest materialization of an asset partition. Nothing is deleted while the
    runs are paged through, so every page's cursor still exists."""
    latest = LatestMaterializations(instance)
    doomed: list[str] = []
    kept = 0
    cursor: str | None = None
    while True:
        records = instance.get_run_records(
            dg.RunsFilter(created_before=cutoff.astimezone(UTC), statuses=list(FINISHED)),
            limit=batch,
            cursor=cursor,
        )
        if not records:
            return doomed, kept
        for record in records:
            run = record.dagster_run
            if latest.holds_latest(run.run_id, run_partitions(dict(run.tags))):
                kept += 1
            else:
                doomed.append(run.run_id)
        cursor = records[-1].dagster_run.run_id


def delete_runs_before(
    instance: dg.DagsterInstance, cutoff: datetime, batch: int = BATCH
) -> RetentionResult:
    """Delete the runs `runs_past_retention` names, with their events and compute logs."""
    doomed, kept = runs_past_retention(instance, cutoff, batch)
    for run_id in doomed:
        instance.delete_run(run_id)
        # the captured stdout/stderr of the run (files under DAGSTER_HOME/storage for the
        # local manager); every compute log manager implements delete_logs
        instance.compute_log_manager.delete_logs(prefix=[run_id])
    return RetentionResult(deleted=len(doomed), kept=kept)


def retention_cutoff(now: datetime, days: int) -> datetime:
    if days < 1:
        raise ValueError(f"run retention must be at least 1 day, got {days}")
    return now - timedelta(days=days)


@dg.op(description="Delete finished runs older than DAGSTER_RUN_RETENTION_DAYS.")
def delete_old_runs(context: dg.OpExecutionContext) -> dg.Output[int]:
    from core.settings import get_settings

    days = get_settings().dagster_run_retention_days
    cutoff = retention_cutoff(datetime.now(UTC), days)
    result = delete_runs_before(context.instance, cutoff)
    context.log.info(
        "runs created before %s (%d days): %d deleted, %d kept (latest materializations)",
        cutoff.isoformat(timespec="seconds"),
        days,
        result.deleted,
        result.kept,
    )
    return dg.Output(
        result.deleted,
        metadata={"cutoff": cutoff.isoformat(), "deleted": result.deleted, "kept": result.kept},
    )


@dg.job(
    executor_def=dg.in_process_executor,
    config=QUIET_CONSOLE,
    description="Daily: delete Dagster runs (events, compute logs) past the retention period.",
)
def run_retention_job() -> None:
    delete_old_runs()


run_retention_schedule = dg.ScheduleDefinition(
    name="run_retention_schedule",
    job=run_retention_job,
    cron_schedule="17 4 * * *",  # once a day, off the hour the marts and backfills favour
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Once a day: delete runs older than DAGSTER_RUN_RETENTION_DAYS.",
)
