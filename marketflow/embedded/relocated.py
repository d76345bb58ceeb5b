"""Server folders relocated to ``/var/lib/marketflow/<id>``: recorded, found, removed.

A server folder is relocated when its home is closed to the service account
(``service_user.server_dir``). It is nobody's to clean up by accident: it lives outside
the checkout, so ``make clean`` or removing a temporary home used to leave it behind (one
test session and a few runs left 26 folders, 2.5 GB). Each relocated folder now holds a
record, ``HOME_RECORD``, naming the server root it belongs to and the symlink there that
points back. A folder is an orphan when that symlink is gone (or points elsewhere) and no
process runs from the folder; ``prune_relocated`` removes orphans (``marketflow services``
and ``marketflow up`` call it), ``remove_relocated`` removes the folders of a home being
cleaned. Folders without a record (made before records existed) are never pruned: they
are reported, and get a record the next time their server starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from marketflow.embedded import service_user
from marketflow.embedded.process import processes_inside
from marketflow.embedded.service_user import HOME_RECORD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    root: Path  # the server's root, e.g. $MARKETFLOW_HOME/postgres
    link: Path  # root/server, the symlink pointing at the relocated folder


def base() -> Path:
    return service_user.RELOCATED_BASE  # read at call time: tests point it elsewhere


def read_record(target: Path) -> Record | None:
    try:
        raw = json.loads((target / HOME_RECORD).read_text())
        return Record(Path(raw["root"]), Path(raw["link"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _links_here(record: Record, target: Path) -> bool:
    try:
        return record.link.is_symlink() and record.link.resolve() == target.resolve()
    except OSError:
        return False


def orphaned(target: Path) -> str | None:
    """Why ``target`` can go (its home and link are gone and no process runs from it), or
    None when it must stay (in use, still linked, or without a record)."""
    record = read_record(target)
    if record is None or _links_here(record, target):
        return None
    users = processes_inside(target)
    if users:
        log.warning("%s has lost its home %s but pids %s still run from it", target,
                    record.root, users)  # fmt: skip
        return None
    why = "is gone" if not record.root.exists() else "no longer links to it"
    return f"its home {record.root} {why}"


def prune_relocated(where: Path | None = None) -> list[str]:
    """Remove every orphaned relocated folder; returns what was removed, in words."""
    where = where or base()
    removed: list[str] = []
    unrecorded = 0
    try:
        folders = sorted(p for p in where.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:  # no such folder (never relocated), or not ours to read
        return removed
    for folder in folders:
        if read_record(folder) is None:
            unrecorded += 1
            continue
        why = orphaned(folder)
        if why is None:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():  # not ours to remove (another user's): say so, keep going
            log.warning("could not remove %s (%s)", folder, why)
        else:
            removed.append(f"relocated server folder {folder} ({why})")
    if unrecorded:
        log.info(
            "%d folder(s) in %s carry no home record (older marketflow): left alone; "
            "remove one by hand once no server runs from it",
            unrecorded,
            where,
        )
    return removed


def relocated_target(link: Path, where: Path | None = None) -> Path | None:
    """The relocated folder ``link`` points at, when it is a symlink into the base."""
    where = (where or base()).resolve()
    if not link.is_symlink():
        return None
    target = link.resolve()
    return target if target.parent == where else None


def server_links(home: Path) -> list[Path]:
    """The ``server`` symlinks under ``home`` at any depth (a test home holds several),
    without walking into server folders themselves (a data directory is thousands of
    files)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            if name == "server" and (Path(folder) / name).is_symlink():
                found.append(Path(folder) / name)
        dirs[:] = [d for d in dirs if d != "server"]
    return sorted(found)


def remove_relocated(home: Path, where: Path | None = None) -> list[Path]:
    """Remove the relocated folders the server roots under ``home`` link to, and the links.
    The servers must be stopped. Returns the folders removed."""
    removed: list[Path] = []
    for link in server_links(home):
        target = relocated_target(link, where)
        if target is None:
            continue
        shutil.rmtree(target, ignore_errors=True)
        link.unlink(missing_ok=True)
        removed.append(target)
    return removed
