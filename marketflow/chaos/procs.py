"""Processes from /proc (Linux): children, command lines, RSS, and who belongs to a run."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name is in brackets and may hold spaces: split after its closing one
    return text[text.rindex(")") + 2 :].split()


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for part in raw.split(b"\0"):
        key, sep, value = part.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def children(pid: int) -> list[int]:
    return [p for p in pids() if parent(p) == pid]


def descendants(pid: int) -> list[int]:
    table = {p: parent(p) for p in pids()}
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in table.items() if pp == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss(pid: int, without: list[int] | None = None) -> int:
    """RSS of a process and everything below it (a child's workers count as the child),
    leaving out the subtrees of ``without``."""
    skip = set(without or ())
    for top in without or ():
        skip.update(descendants(top))
    return sum(rss_bytes(p) for p in [pid, *descendants(pid)] if p not in skip)


def run_workers(pid: int) -> list[int]:
    """Dagster run workers below ``pid``: the processes its code server starts per run
    (``multiprocessing`` spawn children), not the code server itself."""
    return [p for p in descendants(pid) if "multiprocessing.spawn" in " ".join(cmdline(p))]


# the Dagster children of `up` are console scripts: `python .../dagster-webserver ...`
PROGRAMS = {"dagster-web": "dagster-webserver", "dagster-daemon": "dagster-daemon"}


def supervised_child(up_pid: int, name: str) -> int | None:
    """The pid of the child ``name`` (``marketflow <name>``, or a Dagster program) of ``up``."""
    program = PROGRAMS.get(name)
    for pid in children(up_pid):
        argv = cmdline(pid)
        if program is not None:
            if any(Path(arg).name == program for arg in argv[:2]):
                return pid
        elif "marketflow.cli" in argv and argv[argv.index("marketflow.cli") + 1 :][:1] == [name]:
            return pid
    return None


def belongs_to(pid: int, home: str, markers: tuple[str, ...] = ()) -> bool:
    """Whether a live process was started for the run whose home is ``home``: it has it as
    MARKETFLOW_HOME, or the home or a marker (a server folder) on its command line."""
    if zombie(pid):
        return False
    if environ(pid).get("MARKETFLOW_HOME") == home:
        return True
    return any(m in arg for arg in cmdline(pid) for m in (home, *markers))


def run_processes(home: str, exclude: set[int], markers: tuple[str, ...] = ()) -> list[int]:
    return [p for p in pids() if p not in exclude and belongs_to(p, home, markers)]


def kill_group(pid: int, sig: signal.Signals = signal.SIGKILL) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def wait_gone(pids_: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(zombie(p) for p in pids_):
            return True
        time.sleep(0.05)
    return all(zombie(p) for p in pids_)


def kill_all(pids_: list[int]) -> None:
    for pid in pids_:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
