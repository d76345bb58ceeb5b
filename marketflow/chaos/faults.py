"""The faults of a chaos run and their schedule.

A fault is real, not simulated, except the provider's: a supervised child's process group is
SIGKILLed (the supervisor restarts it with backoff); PostgreSQL is crashed (postmaster and
backends SIGKILLed: crash recovery on restart) and Redis is SIGKILLed, each restarted after an
outage on the port its clients' URLs name; the demo feed drops for a while through its
control file (``streaming.providers.demo_run``) and resumes at the next sequence number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from marketflow.chaos import procs
from marketflow.services import Services
from streaming.providers.demo_run import request_disconnect

# the order faults come in; a long run repeats the cycle
CYCLE: tuple[str, ...] = (
    "ingest",
    "postgres",
    "engine",
    "provider",
    "redis",
    "web",
    "ingest-in-outage",  # ingest killed while PostgreSQL is down: what it buffered is at stake
)
WARMUP_S = 15.0  # before the first fault: the platform settles, the WebSocket connects
RECOVERY_S = 30.0  # after the last fault: restarts finish, buffered ticks drain
MIN_SPACING_S = 8.0
MAX_PER_MINUTE = 4.5
CHILD_WAIT_S = 35.0  # a child in its restart backoff (capped at 30 s) is waited for
SERVICE_OUTAGE_S = 4.0  # how long PostgreSQL / Redis stay down
PROVIDER_OUTAGE_S = 5.0


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the platform is up
    kind: str


def schedule(minutes: float) -> list[Planned]:
    """Faults spread evenly between the warm-up and the recovery tail, at least
    ``MIN_SPACING_S`` apart; every kind once when the run is long enough for a cycle."""
    window = minutes * 60.0 - WARMUP_S - RECOVERY_S
    if window <= 0:
        return []
    # at most MAX_PER_MINUTE: in a long run one kind comes round every ~90 s, so the
    # supervisor's restart backoff stays short instead of climbing to its cap
    count = max(1, min(int(window // MIN_SPACING_S), int(MAX_PER_MINUTE * minutes)))
    step = window / count
    return [Planned(WARMUP_S + i * step, CYCLE[i % len(CYCLE)]) for i in range(count)]


class FaultError(RuntimeError):
    pass


@dataclass
class Target:
    """What the faults act on: the `up` process and the run's embedded servers."""

    up_pid: int
    home: Path
    services: Services  # the run's embedded servers (same roots as `up` uses)
    database_url: str
    redis_url: str

    def kill_child(self, name: str) -> str:
        deadline = time.monotonic() + CHILD_WAIT_S
        while (pid := procs.supervised_child(self.up_pid, name)) is None:
            if time.monotonic() > deadline:
                raise FaultError(f"no running {name} under up (pid {self.up_pid})")
            time.sleep(0.2)
        procs.kill_group(pid)
        return f"SIGKILL {name} group (pid {pid})"

    def crash_postgres(
        self, outage_s: float = SERVICE_OUTAGE_S, during: Callable[[], str] | None = None
    ) -> str:
        server = self.services.postgres
        port = urlsplit(self.database_url).port
        lines = (server.pgdata / "postmaster.pid").read_text().splitlines()
        postmaster = int(lines[0])
        group = [postmaster, *procs.descendants(postmaster)]
        procs.kill_all(group)  # postmaster first: no backend is restarted in between
        procs.kill_all(procs.descendants(postmaster))
        if not procs.wait_gone(group, 10.0):
            raise FaultError("PostgreSQL did not die")
        time.sleep(outage_s / 2)
        also = f"; meanwhile {during()}" if during is not None else ""
        time.sleep(outage_s / 2)
        server.start(port=port)
        return (
            f"crashed PostgreSQL (pid {postmaster}), restarted on port {port} "
            f"after {outage_s:.0f}s{also}"
        )

    def crash_redis(self, outage_s: float = SERVICE_OUTAGE_S) -> str:
        server = self.services.redis
        port = urlsplit(self.redis_url).port
        pid = int((server.root / "redis.addr").read_text().split()[0])
        procs.kill_all([pid])
        if not procs.wait_gone([pid], 10.0):
            raise FaultError("Redis did not die")
        time.sleep(outage_s)
        server.start(port=port)
        return f"killed Redis (pid {pid}), restarted on port {port} after {outage_s:.0f}s"

    def cut_provider(self, outage_s: float = PROVIDER_OUTAGE_S) -> str:
        request_disconnect(self.home, outage_s)
        return f"demo feed dropped for {outage_s:.0f}s"

    def action(self, kind: str) -> Callable[[], str]:
        actions: dict[str, Callable[[], str]] = {
            "ingest": lambda: self.kill_child("ingest"),
            "engine": lambda: self.kill_child("engine"),
            "web": lambda: self.kill_child("web"),
            "postgres": self.crash_postgres,
            "redis": self.crash_redis,
            "ingest-in-outage": lambda: self.crash_postgres(
                during=lambda: self.kill_child("ingest")
            ),
            "provider": self.cut_provider,
        }
        return actions[kind]
