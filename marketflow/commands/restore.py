"""``marketflow restore FILE``: a backup back into the configured servers (docs/backup.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "restore a `marketflow backup` file (databases holding data are replaced only with --force)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="a file written by `marketflow backup`"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace databases that hold data (a safety backup of them is written first)",
    )
    parser.add_argument(
        "--safety-dir",
        type=Path,
        metavar="DIR",
        help="where --force writes the safety backup (default: $MARKETFLOW_HOME/backups)",
    )


def run(args: argparse.Namespace) -> int:
    from core.service_urls import ServiceError, database_urls, redact_text
    from core.settings import get_settings
    from marketflow.backup import BackupError
    from marketflow.restore import restore_backup
    from storage.migrate import current_revision, head_revision

    settings = get_settings()
    try:
        market, dagster = database_urls(settings)
        work = settings.state_dir / "tmp"
        work.mkdir(mode=0o700, parents=True, exist_ok=True)
        report = restore_backup(
            args.file,
            {"market": market, "dagster": dagster},
            force=args.force,
            safety_dir=args.safety_dir or settings.state_dir / "backups",
            work_dir=work,
        )
    except (ServiceError, BackupError) as exc:
        print(f"marketflow restore: {redact_text(str(exc))}")
        return 2
    if report.safety_backup is not None:
        print(f"safety backup of the replaced databases: {report.safety_backup}")
    for role, name in report.restored.items():
        print(f"restored the {role} database {name} from {args.file.name}")
    for note in report.notes:
        print(f"note: {redact_text(note)}")
    revision = current_revision(market)
    if revision != head_revision():
        print(f"the restored schema is at {revision}: run `marketflow migrate` before `up`")
    archived = report.manifest.tick_archive.get("days")
    if archived:
        print(
            f"the backup's database names {archived} archived tick days: their files must be "
            f"under {settings.archive_dir} (TICK_ARCHIVE_DIR)"
        )
    return 0
