"""Maintenance: `tick_archive`, ticks older than TICK_RETENTION_DAYS moved to Parquet.

On the shared daily partitions: a run for day D archives D when D is older than the
retention (`storage.tick_archiver.archive_day`: export, check, publish, drop) and is a
no-op, saying why, when retention is unset or D is recent. Re-running an archived day
changes nothing. Profiles, candles and backtests keep reading the day through the one tick
reader (docs/retention.md). The check beside it reads each archived file back against its
manifest and the database's record.
"""

from datetime import UTC, date, datetime

import dagster as dg
import psycopg

from assets.market_data import TICKS
from assets.partitions import daily_partitions, window_days
from assets.resources import PostgresResource
from core.contracts import Table
from storage.tick_archive import TickArchive, file_sha256
from storage.tick_archiver import archive_days, retention_cutoff, stored_days

TICK_ARCHIVE = dg.AssetKey(Table.TICK_ARCHIVE.value)
CANDLES = dg.AssetKey(Table.CANDLES_1M.value)
ARCHIVE = "archive"  # plan entry: the day goes to the archive


def archive_plan(days: list[date], today: date, retention_days: int | None) -> dict[date, str]:
    """Per day: ``archive`` or why it stays in PostgreSQL (pure)."""
    if retention_days is None:
        return {day: "kept: TICK_RETENTION_DAYS is not set" for day in days}
    cutoff = retention_cutoff(today, retention_days)
    return {
        day: ARCHIVE if day < cutoff else f"kept: within {retention_days} days (from {cutoff})"
        for day in days
    }


def days_to_archive(
    conn: psycopg.Connection, archive: TickArchive, today: date, retention_days: int
) -> list[date]:
    """Days past the retention that PostgreSQL still holds (or holds again: late prints)."""
    cutoff = retention_cutoff(today, retention_days)
    return [day for day in stored_days(conn) if day < cutoff]


@dg.asset(
    key=TICK_ARCHIVE,
    deps=[TICKS, CANDLES],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="maintenance",
    kinds={"parquet", "postgres"},
    description=(
        "Tick days older than TICK_RETENTION_DAYS as Parquet (zstd) under TICK_ARCHIVE_DIR, "
        "one file and manifest per day; their PostgreSQL partitions are dropped once the "
        "export is checked. A no-op (with the reason) for recent days or without retention."
    ),
)
def tick_archive(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:
    from core.settings import get_settings

    window = context.partition_time_window
    days = window_days(window.start, window.end)
    retention = get_settings().tick_retention_days
    plan = archive_plan(days, datetime.now(UTC).date(), retention)
    archive = TickArchive.configured()
    todo = [day for day, what in plan.items() if what == ARCHIVE]
    outcomes = {o.day: o for o in archive_days(postgres.url(), archive, todo)}
    report = {
        day.isoformat(): (
            {"action": outcomes[day].action, "rows": outcomes[day].rows}
            | ({"detail": outcomes[day].detail} if outcomes[day].detail else {})
            | ({"merged": outcomes[day].merged} if outcomes[day].merged else {})
            if day in outcomes
            else {"action": plan[day]}
        )
        for day in days
    }
    failed = {d: o.detail for d, o in outcomes.items() if o.action == "failed"}
    for day, why in failed.items():
        context.log.error("archiving %s failed, nothing dropped: %s", day, why)
    metadata: dict[str, dg.RawMetadataValue] = {
        "retention_days": retention if retention is not None else "unset",
        "archive_dir": str(archive.root),
        "days_archived": sum(o.action == "archived" for o in outcomes.values()),
        "rows_archived": sum(o.rows for o in outcomes.values() if o.action == "archived"),
        "days_deferred": sum(o.action == "drop_deferred" for o in outcomes.values()),
        "days": dg.MetadataValue.json(report),
    }
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} days could not be archived (their ticks stay stored)",
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=tick_archive,
    partitions_def=daily_partitions,
    description=(
        "Each archived day of the window: its file's sha256 and rows match the manifest and "
        "the tick_archive record, and PostgreSQL holds no partition for it."
    ),
)
def tick_archive_matches_manifest(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    archive = TickArchive.configured()
    days = window_days(window.start, window.end)
    with postgres.connect(read_only=True) as conn:
        records = {
            r[0]: (int(r[1]), str(r[2]))
            for r in conn.execute(
                "select day, rows, sha256 from tick_archive where day = any(%s)", (days,)
            )
        }
        attached = set(stored_days(conn))
    problems: dict[str, str] = {}
    checked = 0
    for day in days:
        manifest = archive.manifest(day)
        if manifest is None:
            if day in records:
                problems[day.isoformat()] = f"recorded but missing from {archive.root}"
            continue
        checked += 1
        if not archive.file_path(day).exists():
            problems[day.isoformat()] = "manifest without its file"
        elif file_sha256(archive.file_path(day)) != manifest.sha256:
            problems[day.isoformat()] = "file sha256 differs from the manifest"
        elif records.get(day) != (manifest.rows, manifest.sha256):
            problems[day.isoformat()] = f"record {records.get(day)} differs from the manifest"
        elif day in attached:
            problems[day.isoformat()] = "a partition holds the day again (the next run merges it)"
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{d}: {why}" for d, why in problems.items()) or None,
        metadata={"days_checked": checked, "problems": dg.MetadataValue.json(problems)},
    )


MAINTENANCE_CHECKS = [tick_archive_matches_manifest]
