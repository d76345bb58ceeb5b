"""``marketflow archive``: the tick archive from the command line (docs/retention.md).

What the daily Dagster schedule does, without Dagster: every stored tick day older than
TICK_RETENTION_DAYS goes to Parquet (days before MARKETFLOW_HISTORY_START too, which are
not Dagster partitions). ``--list`` only shows the archive and what is due.
"""

from __future__ import annotations

import argparse

HELP = "move tick days older than TICK_RETENTION_DAYS to the Parquet archive (--list: show it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--list", action="store_true", help="list archived days and the days due, change nothing"
    )


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from core.service_urls import ServiceError, database_urls, redact_text
    from core.settings import get_settings
    from storage.db import connect
    from storage.tick_archive import TickArchive
    from storage.tick_archiver import archive_days, retention_cutoff, stored_days

    settings = get_settings()
    archive = TickArchive.configured()
    retention = settings.tick_retention_days
    try:
        url, _dagster = database_urls(settings)
        with connect(url) as conn:
            stored = stored_days(conn)
    except (ServiceError, OSError) as exc:
        print(f"marketflow archive: {redact_text(str(exc))}")
        return 2
    except Exception as exc:  # psycopg's errors: the server's words, redacted
        print(f"marketflow archive: {redact_text(f'{type(exc).__name__}: {exc}')}")
        return 2
    today = datetime.now(UTC).date()
    due = [] if retention is None else [d for d in stored if d < retention_cutoff(today, retention)]
    if args.list:
        days = sorted(archive.days())
        for day in days:
            manifest = archive.manifest(day)
            print(f"{day}  archived  {manifest.rows if manifest else '?':>12} rows")
        for day in due:
            print(f"{day}  due")
        print(f"{len(days)} days in {archive.root}; {len(due)} due; {len(stored)} days stored")
        return 0
    if retention is None:
        print("marketflow archive: TICK_RETENTION_DAYS is not set: every tick stays stored")
        return 2
    failed = 0
    for outcome in archive_days(url, archive, due):
        extra = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{outcome.day}  {outcome.action}  {outcome.rows} rows{extra}")
        failed += outcome.action == "failed"
    print(f"{len(due)} days past the retention ({retention} days); archive at {archive.root}")
    return 1 if failed else 0
