"""Run retention on a real instance (PostgreSQL storage, as `marketflow up` writes it)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pydantic import ValidationError

from core.settings import Settings
from marketflow.dagster_home import write_dagster_home
from orchestration.run_retention import (
    delete_runs_before,
    retention_cutoff,
    run_partitions,
    run_retention_job,
)
from storage.db import libpq_url

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

OLD, NEW = "2024-03-04", "2024-03-05"


@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-03-01"))
def daily_rows() -> None:
    """A partitioned asset standing in for the minute runs' tables."""


@dg.op
def noop() -> None:
    pass


@dg.job
def unpartitioned_job() -> None:
    noop()


@pytest.fixture
def instance(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """An instance on the dagster.yaml `marketflow up` writes, on a real PostgreSQL."""
    home = tmp_path / "dagster"
    for key, value in write_dagster_home(home, empty_db_url, retention_days=7).items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def materialize(instance: dg.DagsterInstance, partition: str) -> str:
    result = dg.materialize([daily_rows], partition_key=partition, instance=instance)
    assert result.success
    return result.run_id


def backdate(database_url: str, run_ids: list[str], days: int) -> None:
    """Move runs back in time (the test's clock: creation times are set by the storage)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "update runs set create_timestamp = create_timestamp - make_interval(days => %s) "
            "where run_id = any(%s)",
            (days, run_ids),
        )


def compute_log_folder(instance: dg.DagsterInstance, run_id: str) -> Path:
    """A captured log file of the run where the local compute log manager keeps them."""
    folder = Path(instance.root_directory) / "storage" / run_id
    (folder / "compute_logs").mkdir(parents=True, exist_ok=True)
    (folder / "compute_logs" / "step.out").write_text("captured stdout\n")
    return folder


def test_retention_deletes_old_runs_and_keeps_recent_and_latest_ones(
    instance: dg.DagsterInstance, empty_db_url: str
) -> None:
    replaced = materialize(instance, OLD)  # superseded by the next run of the same day
    latest_old = materialize(instance, OLD)  # the day's latest materialization: kept
    recent = materialize(instance, NEW)  # inside the retention period: kept
    housekeeping = unpartitioned_job.execute_in_process(instance=instance).run_id
    failed, stuck = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id, status in ((failed, dg.DagsterRunStatus.FAILURE), (stuck, "STARTED")):
        instance.add_run(
            dg.DagsterRun(
                job_name="minute_job",
                run_id=run_id,
                status=dg.DagsterRunStatus(status),
                tags={"dagster/partition": OLD},
            )
        )
    old = [replaced, latest_old, housekeeping, failed, stuck]
    backdate(empty_db_url, old, days=10)
    logs = compute_log_folder(instance, replaced)

    result = run_retention_job.execute_in_process(instance=instance)

    assert result.success
    assert result.output_for_node("delete_old_runs") == 3
    gone = {replaced, housekeeping, failed}
    for run_id in gone:
        assert instance.get_run_by_id(run_id) is None
    remaining = {r.run_id for r in instance.get_runs()}
    # the retention run itself is new; a run still STARTED is never deleted
    assert {latest_old, recent, stuck, result.run_id} == remaining
    assert not logs.exists()
    with psycopg.connect(libpq_url(empty_db_url)) as conn:
        (events,) = conn.execute(
            "select count(*) from event_logs where run_id = any(%s)", (list(gone),)
        ).fetchone()
    assert events == 0  # a deleted run's events go with it
    # Dagster still knows both days were materialized, from the kept runs
    for partition, run_id in ((OLD, latest_old), (NEW, recent)):
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=daily_rows.key, asset_partitions=[partition]), limit=5
        ).records
        assert record.run_id == run_id

    # the next day's cleanup finds nothing more to delete
    again = delete_runs_before(instance, datetime.now(UTC) - timedelta(days=7))
    assert (again.deleted, again.kept) == (0, 1)


def test_the_instance_keeps_ticks_as_long_as_runs(instance: dg.DagsterInstance) -> None:
    """dagster.yaml carries the tick retention, and the instance reads it."""
    retention = instance.get_settings("retention")
    assert retention["schedule"]["purge_after_days"] == 7
    assert retention["sensor"]["purge_after_days"] == {"skipped": 1, "failure": 7, "success": 7}
    assert instance.get_settings("python_logs")["python_log_level"] == "INFO"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"


@pytest.mark.parametrize("days", ["0", "-3"])
def test_a_retention_of_no_days_is_refused_at_settings_load(
    days: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", days)
    with pytest.raises(ValidationError, match="DAGSTER_RUN_RETENTION_DAYS must be"):
        Settings()
    monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", "30")
    assert Settings().dagster_run_retention_days == 30
    monkeypatch.delenv("DAGSTER_RUN_RETENTION_DAYS")
    assert Settings().dagster_run_retention_days == 7


def test_partitions_of_a_run_and_the_cutoff() -> None:
    assert run_partitions({"dagster/partition": OLD}) == [OLD]
    assert run_partitions(
        {
            "dagster/asset_partition_range_start": "2024-02-28",
            "dagster/asset_partition_range_end": "2024-03-01",
        }
    ) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert run_partitions({}) == []
    now = datetime(2024, 3, 10, tzinfo=UTC)
    assert retention_cutoff(now, 7) == datetime(2024, 3, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="at least 1 day"):
        retention_cutoff(now, 0)
