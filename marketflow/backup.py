"""``marketflow backup``: the market and Dagster databases in one file (docs/backup.md).

The file is an uncompressed tar holding ``manifest.json`` and one pg_dump custom-format
dump per database (already compressed by pg_dump). It is written under a temporary name,
flushed and renamed, mode 0600 from creation (the dumps hold everything, order history
included), named ``marketflow-backup-YYYYMMDDTHHMMSSZ.tar``. The tick archive is files
already (docs/retention.md) and is not copied; the manifest names how many days it holds.
``read_manifest`` checks a file is such a backup before anything uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from marketflow import pg_tools
from storage.db import libpq_url

BACKUP_FORMAT = "marketflow.backup/1"
MANIFEST = "manifest.json"
ROLES = ("market", "dagster")  # the market data, Dagster's instance storage


class BackupError(RuntimeError):
    """A backup could not be written or read; the message says what to do."""


@dataclass(frozen=True)
class DumpEntry:
    role: str
    database: str
    file: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class BackupManifest:
    created_at: str
    server_version: str
    pg_dump_version: str
    dumps: list[DumpEntry]
    tick_archive: dict[str, object] = field(default_factory=dict)
    format: str = BACKUP_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def database_exists(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10):
            return True
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return False
        raise


def writable_dir(target: Path) -> Path:
    """``target`` as a directory this process can create files in (made 0700 if new)."""
    if target.exists() and not target.is_dir():
        raise BackupError(f"{target} is not a directory: choose another --to")
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".marketflow-probe-"):
            pass
    except OSError as exc:
        raise BackupError(
            f"cannot write to {target}: {exc.strerror or exc}; choose a writable --to"
        ) from None
    return target


def write_backup(
    market_url: str,
    dagster_url: str | None,
    target: Path,
    *,
    archive_days: int | None = None,
    now: datetime | None = None,
) -> Path:
    """Dump both databases into one new file in ``target``; returns its path."""
    target = writable_dir(target)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    final = target / f"marketflow-backup-{stamp}.tar"
    if final.exists():
        raise BackupError(f"{final} exists already: wait a second or choose another --to")
    work = Path(tempfile.mkdtemp(dir=target, prefix=".marketflow-backup-"))
    partial = target / f".{final.name}.partial"
    try:
        databases = [("market", market_url)]
        if dagster_url and database_exists(dagster_url):
            databases.append(("dagster", dagster_url))
        dumps = [_dump(role, url, work) for role, url in databases]
        manifest = BackupManifest(
            created_at=(now or datetime.now(UTC)).isoformat(),
            server_version=_server_version(market_url),
            pg_dump_version=pg_tools.version("pg_dump"),
            dumps=dumps,
            tick_archive={"days": archive_days} if archive_days is not None else {},
        )
        (work / MANIFEST).write_text(manifest.to_json())
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(work / MANIFEST, arcname=MANIFEST)
                for dump in dumps:
                    tar.add(work / dump.file, arcname=dump.file)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, final)
        dir_fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except pg_tools.PgToolError as exc:
        raise BackupError(str(exc)) from None
    except OSError as exc:
        raise BackupError(f"writing {final} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return final


def _dump(role: str, url: str, work: Path) -> DumpEntry:
    name = make_url(url).database or role
    path = work / f"{role}.dump"
    # custom format: compressed, and pg_restore can list and check it before restoring
    pg_tools.run("pg_dump", ["--format=custom", f"--file={path}", f"--dbname={name}"], url)
    return DumpEntry(role, name, path.name, path.stat().st_size, _sha256(path))


def _server_version(url: str) -> str:
    with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
        row = conn.execute("show server_version").fetchone()
    return str(row[0]) if row else "unknown"


def read_manifest(path: Path, extract_to: Path | None = None) -> BackupManifest:
    """The backup's manifest, after checking the file is a marketflow backup whose dumps
    are intact (sha256) and readable by pg_restore. With ``extract_to`` the dumps are left
    there. Raises BackupError, having changed nothing."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    if not tarfile.is_tarfile(path):
        raise BackupError(f"{path} is not a marketflow backup (not a tar file)")
    try:
        with tarfile.open(path, mode="r") as tar:
            member = tar.getmember(MANIFEST)
            raw = tar.extractfile(member)
            data = json.loads(raw.read() if raw else b"")
            if data.get("format") != BACKUP_FORMAT:
                raise BackupError(
                    f"{path} is not a marketflow backup (format {data.get('format')!r})"
                )
            manifest = BackupManifest(**{**data, "dumps": [DumpEntry(**d) for d in data["dumps"]]})
            names = {m.name for m in tar.getmembers()}
            with tempfile.TemporaryDirectory(prefix="marketflow-restore-check-") as scratch:
                folder = extract_to or Path(scratch)
                for dump in manifest.dumps:
                    if dump.role not in ROLES or dump.file not in names or "/" in dump.file:
                        raise BackupError(f"{path}: unexpected dump entry {dump.file!r}")
                    tar.extract(dump.file, folder, filter="data")
                    extracted = folder / dump.file
                    if _sha256(extracted) != dump.sha256:
                        raise BackupError(f"{path}: {dump.file} is damaged (sha256 differs)")
                    pg_tools.run("pg_restore", ["--list", str(extracted)])
    except (KeyError, ValueError, TypeError, tarfile.TarError) as exc:
        raise BackupError(
            f"{path} is not a marketflow backup ({type(exc).__name__}: {exc})"
        ) from None
    except pg_tools.PgToolError as exc:
        raise BackupError(f"{path} holds a dump pg_restore cannot read: {exc}") from None
    if not any(d.role == "market" for d in manifest.dumps):
        raise BackupError(f"{path} holds no market database dump")
    return manifest
