"""``marketflow restore FILE``: a backup back into the configured servers (docs/backup.md).

Safe by default. The file is checked first (``backup.read_manifest``: a marketflow backup,
dumps intact and readable); a database that holds tables is only replaced with ``force``,
and then a safety backup of it is written first; a database other sessions use is never
touched (stop ``marketflow up`` first). Each dump is restored into a new scratch database
in one transaction; only when every dump is in, one transaction renames the old databases
aside and the scratch ones into their names, and the old ones are dropped. A failure at
any step before that rename leaves the configured databases exactly as they were.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from core.service_urls import with_database
from marketflow import pg_tools
from marketflow.backup import BackupError, BackupManifest, read_manifest, write_backup
from storage.db import libpq_url

SCRATCH_SUFFIX = "_restoring"

USER_RELATIONS = """
select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm')
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
"""


@dataclass
class RestoreReport:
    manifest: BackupManifest
    restored: dict[str, str] = field(default_factory=dict)  # role → database name
    safety_backup: Path | None = None
    notes: list[str] = field(default_factory=list)


def _admin(url: str) -> psycopg.Connection:
    """A connection to the server's maintenance database (renames need one elsewhere)."""
    last: Exception | None = None
    for name in ("postgres", "template1"):
        try:
            return psycopg.connect(libpq_url(with_database(url, name)), autocommit=True)
        except psycopg.OperationalError as exc:
            last = exc
    raise BackupError(f"cannot reach the PostgreSQL server to restore into: {last}")


def _state(admin: psycopg.Connection, url: str, name: str) -> tuple[bool, int, list[str]]:
    """(exists, user tables and views, applications of other sessions connected to it)."""
    if admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
        return False, 0, []
    users = [
        str(r[0] or "unnamed")
        for r in admin.execute(
            "select application_name from pg_stat_activity where datname = %s "
            "and pid <> pg_backend_pid()",
            (name,),
        )
    ]
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        row = conn.execute(USER_RELATIONS).fetchone()
    return True, int(row[0]) if row else 0, users


def restore_backup(
    path: Path,
    urls: dict[str, str],
    *,
    force: bool = False,
    safety_dir: Path,
    work_dir: Path | None = None,
) -> RestoreReport:
    """Restore ``path`` into the databases of ``urls`` (role → URL: market, dagster)."""
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="marketflow-restore-") as folder:
        manifest = read_manifest(path, extract_to=Path(folder))
        report = RestoreReport(manifest)
        targets = {d.role: (d, urls[d.role]) for d in manifest.dumps if d.role in urls}
        with _admin(urls["market"]) as admin:
            occupied = []
            for role, (_dump, url) in targets.items():
                name = make_url(url).database or role
                exists, tables, users = _state(admin, url, name)
                if users:
                    raise BackupError(
                        f"{len(users)} sessions use database {name} "
                        f"({', '.join(sorted(set(users)))}): stop `marketflow up` and anything "
                        "else connected to it, then restore again; nothing was changed"
                    )
                if exists and tables:
                    occupied.append(f"{name} ({tables} tables)")
            if occupied and not force:
                verb = "holds" if len(occupied) == 1 else "hold"
                raise BackupError(
                    f"restore replaces whole databases and {', '.join(occupied)} {verb} data: "
                    "pass --force to replace them (a safety backup of them is written first); "
                    "nothing was changed"
                )
            if occupied:
                report.safety_backup = write_backup(urls["market"], urls.get("dagster"), safety_dir)
            scratch = _restore_into_scratch(admin, targets, Path(folder))
            _swap(admin, scratch, report)
    return report


def _restore_into_scratch(
    admin: psycopg.Connection, targets: dict, folder: Path
) -> dict[str, tuple[str, str]]:
    """role → (scratch database, final name); every dump restored, or none kept."""
    made: dict[str, tuple[str, str]] = {}
    try:
        for role, (dump, url) in targets.items():
            name = make_url(url).database or role
            scratch = f"{name}{SCRATCH_SUFFIX}"
            # a scratch database left by an interrupted restore is ours to remove
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch))
            )
            admin.execute(
                sql.SQL("create database {} template template0").format(sql.Identifier(scratch))
            )
            made[role] = (scratch, name)
            pg_tools.run(
                "pg_restore",
                [
                    "--no-owner",
                    "--no-acl",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={scratch}",
                    str(folder / dump.file),
                ],
                with_database(url, scratch),
            )
    except (pg_tools.PgToolError, psycopg.Error) as exc:
        for scratch, _name in made.values():
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch))
            )
        raise BackupError(f"restore failed, nothing was changed: {exc}") from None
    return made


def _swap(
    admin: psycopg.Connection, scratch: dict[str, tuple[str, str]], report: RestoreReport
) -> None:
    """Rename the old databases aside and the restored ones into place, in one transaction."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    aside: list[str] = []
    try:
        with admin.transaction():
            for _role, (temp, name) in scratch.items():
                if admin.execute(
                    "select 1 from pg_database where datname = %s", (name,)
                ).fetchone():
                    old = f"{name}_replaced_{stamp}"[:63]
                    admin.execute(
                        sql.SQL("alter database {} rename to {}").format(
                            sql.Identifier(name), sql.Identifier(old)
                        )
                    )
                    aside.append(old)
                admin.execute(
                    sql.SQL("alter database {} rename to {}").format(
                        sql.Identifier(temp), sql.Identifier(name)
                    )
                )
    except psycopg.Error as exc:
        for temp, _name in scratch.values():
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(temp))
            )
        raise BackupError(
            f"could not put the restored databases in place ({exc}); nothing was changed"
        ) from None
    for role, (_temp, name) in scratch.items():
        report.restored[role] = name
    for old in aside:
        try:
            admin.execute(sql.SQL("drop database {}").format(sql.Identifier(old)))
        except psycopg.Error as exc:
            report.notes.append(f"the replaced database {old} could not be dropped: {exc}")
