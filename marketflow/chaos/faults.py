"""The faults of a chaos run and their schedule.

A fault is real, not simulated, except the provider's: a supervised child's process group is
SIGKILLed (the supervisor restarts it with backoff); PostgreSQL is crashed (postmaster and
backends SIGKILLed: crash recovery on restart) and Redis is SIGKILLed, and `up` itself
restarts each on the port its clients' URLs name (``marketflow.embedded.watch``): the fault
waits until it has. Faults overlap: PostgreSQL and Redis go down together with ingest killed
during both, and the spool's disk is full (a file-size limit of 0 on the ingest process)
through a PostgreSQL outage. The demo feed drops for a while through its control file
(``streaming.providers.demo_run``) and resumes at the next sequence number.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

from core.contracts import STATUS_KEY_PREFIX
from marketflow.chaos import procs
from marketflow.services import Services
from storage.db import libpq_url
from streaming.providers.demo_run import request_disconnect

# the order faults come in; a long run repeats the cycle. The ones that crash PostgreSQL are
# every other slot, so `up`'s restart backoff for it resets between them in a long run
CYCLE: tuple[str, ...] = (
    "postgres",
    "ingest",
    "ingest-in-outage",  # ingest killed while PostgreSQL is down: what it buffered is at stake
    "engine",
    "both-down",  # PostgreSQL and Redis down together, ingest killed during both
    "provider",
    "spool-full",  # the spool's disk full through a PostgreSQL outage
    "web",
    "redis",
)
WARMUP_S = 15.0  # before the first fault: the platform settles, the WebSocket connects
RECOVERY_S = 30.0  # after the last fault: restarts finish, buffered ticks drain
MIN_SPACING_S = 8.0
SHORT_RUN_PER_MINUTE = 4.5  # a run of two minutes or less: every kind once
LONG_RUN_PER_MINUTE = 2.0  # longer: PostgreSQL crashes >= 60 s apart, so its backoff resets
CHILD_WAIT_S = 35.0  # a child in its restart backoff (capped at 30 s) is waited for
HEAL_WAIT_S = 90.0  # how long `up` gets to bring a crashed server back
PROVIDER_OUTAGE_S = 5.0
DISK_FULL_DRAIN_S = 3.0  # the disk stays full this long after PostgreSQL is back
HEARTBEAT_S = 5.0  # how often ingest's counters reach Redis (streaming.heartbeat)


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the platform is up
    kind: str


def per_minute(minutes: float) -> float:
    return SHORT_RUN_PER_MINUTE if minutes <= 2.0 else LONG_RUN_PER_MINUTE


def schedule(minutes: float) -> list[Planned]:
    """Faults spread evenly between the warm-up and the recovery tail, at least
    ``MIN_SPACING_S`` apart; every kind once when the run is long enough for a cycle."""
    window = minutes * 60.0 - WARMUP_S - RECOVERY_S
    if window <= 0:
        return []
    count = max(1, min(int(window // MIN_SPACING_S), int(per_minute(minutes) * minutes)))
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

    def _postgres_pids(self) -> list[int]:
        lines = (self.services.postgres.pgdata / "postmaster.pid").read_text().splitlines()
        postmaster = int(lines[0])
        return [postmaster, *procs.descendants(postmaster)]

    def _kill_postgres(self) -> int:
        group = self._postgres_pids()
        procs.kill_all(group)  # postmaster first: no backend is restarted in between
        procs.kill_all(procs.descendants(group[0]))
        if not procs.wait_gone(group, 10.0):
            raise FaultError("PostgreSQL did not die")
        return group[0]

    def _kill_redis(self) -> int:
        pid = int((self.services.redis.root / "redis.addr").read_text().split()[0])
        procs.kill_all([pid])
        if not procs.wait_gone([pid], 10.0):
            raise FaultError("Redis did not die")
        return pid

    def _postgres_back(self, killed: int, since: float) -> str:
        """Wait until `up` has PostgreSQL answering on the clients' URL again."""
        port = urlsplit(self.database_url).port
        deadline = since + HEAL_WAIT_S
        while time.monotonic() < deadline:
            pid = self.services.postgres.running_pid()
            if pid is not None and pid != killed:
                with contextlib.suppress(psycopg.Error):
                    with psycopg.connect(libpq_url(self.database_url), connect_timeout=2) as c:
                        c.execute("select 1")
                    return f"back on port {port} after {time.monotonic() - since:.1f}s"
            time.sleep(0.2)
        raise FaultError(f"`up` did not bring PostgreSQL back within {HEAL_WAIT_S:.0f}s")

    def _redis_back(self, killed: int, since: float) -> str:
        port = urlsplit(self.redis_url).port
        deadline = since + HEAL_WAIT_S
        while time.monotonic() < deadline:
            pid = self.services.redis.running_pid()
            if pid is not None and pid != killed:
                client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
                with contextlib.suppress(redis.RedisError), contextlib.closing(client):
                    if client.ping():
                        return f"back on port {port} after {time.monotonic() - since:.1f}s"
            time.sleep(0.2)
        raise FaultError(f"`up` did not bring Redis back within {HEAL_WAIT_S:.0f}s")

    def crash_postgres(self, during: Callable[[], str] | None = None) -> str:
        since = time.monotonic()
        killed = self._kill_postgres()
        also = f"; meanwhile {during()}" if during is not None else ""
        return f"crashed PostgreSQL (pid {killed}){also}; {self._postgres_back(killed, since)}"

    def crash_redis(self) -> str:
        since = time.monotonic()
        killed = self._kill_redis()
        return f"killed Redis (pid {killed}); {self._redis_back(killed, since)}"

    def crash_both(self) -> str:
        """PostgreSQL and Redis down together; ingest killed while both are."""
        since = time.monotonic()
        pg, rd = self._kill_postgres(), self._kill_redis()
        ingest = self.kill_child("ingest")
        pg_back = self._postgres_back(pg, since)
        rd_back = self._redis_back(rd, since)
        return (
            f"crashed PostgreSQL (pid {pg}) and Redis (pid {rd}); meanwhile {ingest}; "
            f"PostgreSQL {pg_back}, Redis {rd_back}"
        )

    def fill_spool_disk(self) -> str:
        """The spool's disk full (no file of the ingest process may grow) through a
        PostgreSQL outage, then space again: what could not spill stayed in memory."""
        deadline = time.monotonic() + CHILD_WAIT_S
        while (pid := procs.supervised_child(self.up_pid, "ingest")) is None:
            if time.monotonic() > deadline:
                raise FaultError(f"no running ingest under up (pid {self.up_pid})")
            time.sleep(0.2)
        before = self._spill_failures() or 0
        old = resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        try:
            crash = self.crash_postgres()
            time.sleep(DISK_FULL_DRAIN_S)
        finally:
            with contextlib.suppress(ProcessLookupError):  # gone: its successor has space
                resource.prlimit(pid, resource.RLIMIT_FSIZE, old)
        # the heartbeat says within a few beats whether the full disk refused a spill: a
        # fault that did not bite must not pass for one that was survived
        deadline = time.monotonic() + 3 * HEARTBEAT_S
        while (after := self._spill_failures() or 0) <= before:
            if time.monotonic() > deadline:
                raise FaultError(f"the full disk refused no spill of ingest (pid {pid})")
            time.sleep(0.5)
        return f"disk full for ingest (pid {pid}): {crash}; spills refused {after - before}"

    def _spill_failures(self) -> int | None:
        """Ingest's ``spill_failures`` counter from its heartbeat (None when unknown)."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, decode_responses=True)
        with contextlib.suppress(redis.RedisError, ValueError), contextlib.closing(client):
            value = client.hget(f"{STATUS_KEY_PREFIX}ingest", "spill_failures")
            return int(str(value)) if value is not None else None
        return None

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
            "both-down": self.crash_both,
            "spool-full": self.fill_spool_disk,
            "provider": self.cut_provider,
        }
        return actions[kind]
