"""What ``marketflow up`` supervises, in a file beside its servers (docs/operations.md).

The heartbeats ``marketflow status`` reads live in Redis, so while Redis itself is down they
cannot say that ``up`` is restarting it. ``up`` therefore also keeps
``$MARKETFLOW_HOME/up-status.json``: its addresses, its log folder and, for every child and
embedded server, the state, pid, restarts and last exit. It is rewritten on every change
and every few seconds, and removed when ``up`` stops; ``status`` ignores a file whose
writer is gone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUS_FILE = "up-status.json"
REFRESH_S = 5.0


@dataclass
class Supervised:
    name: str
    kind: str  # "server" (an embedded PostgreSQL or Redis) or "child"
    state: str  # running | restarting | down | starting
    pid: int | None
    restarts: int
    last_exit: str = ""
    since: str = ""  # UTC time of the last exit, for servers


@dataclass
class UpStatus:
    pid: int
    updated_at: float  # time.time()
    logs: str
    addresses: list[tuple[str, str]] = field(default_factory=list)
    processes: list[Supervised] = field(default_factory=list)


def write(home: Path, status: UpStatus) -> None:
    """Replace the file atomically (a reader never sees half of it), private to the user."""
    path = home / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(status), fh, indent=1)
    os.replace(tmp, path)


def remove(home: Path) -> None:
    (home / STATUS_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(home: Path) -> UpStatus | None:
    """The status of the ``up`` running on ``home``; None when none runs (or the file is
    unreadable, or left by an ``up`` that was killed)."""
    try:
        raw = json.loads((home / STATUS_FILE).read_text())
        status = UpStatus(
            pid=int(raw["pid"]),
            updated_at=float(raw["updated_at"]),
            logs=str(raw["logs"]),
            addresses=[(str(k), str(v)) for k, v in raw["addresses"]],
            processes=[Supervised(**p) for p in raw["processes"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return status if _alive(status.pid) else None


def render(status: UpStatus, now: float | None = None) -> list[str]:
    """The lines ``marketflow status`` prints for it (pure)."""
    age = max(0.0, (now if now is not None else time.time()) - status.updated_at)
    out = [f"Supervised by `marketflow up` (pid {status.pid}, updated {age:.0f}s ago)"]
    width = max([len("PROCESS"), *(len(p.name) for p in status.processes)]) + 2
    out.append(f"  {'PROCESS':<{width}}{'STATE':<12}{'PID':>8}  {'RESTARTS':>8}  LAST EXIT")
    for p in status.processes:
        last = p.last_exit + (f" at {p.since}" if p.since else "")
        out.append(
            f"  {p.name:<{width}}{p.state:<12}{p.pid or '-':>8}  {p.restarts:>8}  {last}".rstrip()
        )
    width = max([len("logs"), *(len(k) for k, _ in status.addresses)])
    out += [f"  {label:<{width}}  {address}" for label, address in status.addresses]
    out.append(f"  {'logs':<{width}}  {status.logs}")
    return out
