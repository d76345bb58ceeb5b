"""``marketflow backup``: the market and Dagster databases in one file (docs/backup.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "dump the market and Dagster databases into one backup file (pg_dump, custom format)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="folder for the backup file (default: $MARKETFLOW_HOME/backups)",
    )


def run(args: argparse.Namespace) -> int:
    from core.service_urls import ServiceError, database_urls, redact_text
    from core.settings import get_settings
    from marketflow.backup import BackupError, write_backup
    from storage.tick_archive import TickArchive

    settings = get_settings()
    target = args.to or settings.state_dir / "backups"
    try:
        market, dagster = database_urls(settings)
        path = write_backup(
            market, dagster, target, archive_days=len(TickArchive.configured().days())
        )
    except (ServiceError, BackupError) as exc:
        print(f"marketflow backup: {redact_text(str(exc))}")
        return 2
    size = path.stat().st_size
    print(f"backup written: {path} ({size / 1e6:.1f} MB, mode 0600)")
    print(f"restore with: marketflow restore {path}")
    archive = settings.archive_dir
    if any(archive.glob("day=*")):
        print(f"the tick archive is files, not in the backup: copy {archive} as well")
    return 0
