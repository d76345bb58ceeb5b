"""Small process and socket helpers shared by the embedded servers."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from core.service_urls import ServiceError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie (exited, not yet reaped) is not.

    A postmaster that ``pg_ctl`` detached is reaped by PID 1; where PID 1 never reaps (some
    containers), a stopped server stays a zombie that ``kill(pid, 0)`` still reaches."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return False
    # the state follows the command name, which is in parentheses and may hold spaces
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X")


def runs(pid: int, program: bytes) -> bool:
    """Whether ``pid`` runs ``program`` (from /proc; without /proc, assume it does)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except PermissionError:
        return False
    return program in cmdline


def process_uid(pid: int) -> int | None:
    """The real uid a process runs as (from /proc), None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (FileNotFoundError, PermissionError, ValueError):
        return None
    return None


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise ServiceError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def processes_inside(folder: Path) -> list[int]:
    """Live processes that run from ``folder``: their working directory or an argument is
    inside it (a server's binaries, data and working directory all are)."""
    inside = str(folder.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if "State:\tZ" in (entry / "status").read_text():
                continue  # a zombie holds nothing
            cwd = os.readlink(entry / "cwd")
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        paths = [cwd, *(a for a in argv if a.startswith("/"))]
        if any(p == inside or p.startswith(inside + "/") for p in paths):
            found.append(int(entry.name))
    return found
