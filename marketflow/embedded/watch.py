"""Embedded servers kept running under ``marketflow up`` (docs/operations.md, supervision).

``up`` starts PostgreSQL and Redis in its own process (``marketflow.services``) before any
child, so the supervisor of the children does not own them. ``ServerWatch`` does for them
what the supervisor does for a child: it notices that a server is gone (its pid file names
no live server), logs it like a child's exit and starts it again after the same capped
backoff, on the same port, with the same password file and data directory. The URLs every
child holds stay valid, so the children reconnect by themselves: ingest spools meanwhile
and drains after, the engine and the dashboard retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from core.service_urls import ServiceError, redact_text
from marketflow.supervisor import backoff_delay, describe_exit

POLL_S = 0.5  # how often a server's pid is looked at (a read of /proc, cheap)


class Restartable(Protocol):
    """What ``EmbeddedPostgres`` and ``EmbeddedRedis`` offer the watch."""

    port: int | None

    def running_pid(self) -> int | None: ...

    def exit_status(self, pid: int) -> int | None: ...

    def start(self, timeout: float = ..., port: int | None = None) -> str: ...


@dataclass
class ServerState:
    """One watched server, as ``marketflow status`` shows it."""

    name: str
    port: int
    pid: int | None = None
    state: str = "running"  # running | down (waiting out the backoff) | starting
    restarts: int = 0  # consecutive quick deaths: drives the backoff
    total_restarts: int = 0
    started_at: float = 0.0  # clock() of the last successful start
    last_exit: str = ""  # in words: "signal SIGKILL", "gone"
    last_down_at: str = ""  # UTC ISO time the server was last found gone
    next_try_at: float = 0.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ServerWatch:
    """Restarts the embedded servers ``up`` started, until ``stop()``."""

    def __init__(
        self,
        servers: Mapping[str, Restartable],
        log: Callable[[str], None],
        *,
        poll: float = POLL_S,
        backoff_initial: float = 1.0,
        backoff_cap: float = 30.0,
        stable_after: float = 30.0,  # a server is up in a second: half a minute is healthy
        start_timeout: float = 30.0,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = dict(servers)
        self.log = log
        self.poll = poll
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.stable_after = stable_after
        self.start_timeout = start_timeout
        self.on_change = on_change
        self.clock = clock
        self.states: dict[str, ServerState] = {}
        for name, server in self.servers.items():
            if server.port is None:
                raise ValueError(f"{name} is not started: nothing to watch")
            self.states[name] = ServerState(
                name, server.port, server.running_pid(), started_at=clock()
            )
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name in self.servers:
            self._tasks.append(asyncio.create_task(self._watch(name), name=f"watch-{name}"))

    async def stop(self) -> None:
        """No restart after this returns (a start in flight is waited for)."""
        self._stopping.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, Exception):  # never swallowed without a word
                self.log(f"watching {task.get_name()} failed: {result!r}")
        self._tasks = []

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True when ``stop()`` came first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()

    async def _watch(self, name: str) -> None:
        server, state = self.servers[name], self.states[name]
        while not await self._sleep(self.poll):
            pid = server.running_pid()
            if pid is not None:
                state.pid = pid
                continue
            gone = state.pid
            code = server.exit_status(gone) if gone is not None else None
            # pg_ctl detaches the postmaster: its exit status is not ours to collect
            state.last_exit = describe_exit(code) if code is not None else "gone"
            state.last_down_at = utc_now()
            how = f"exited with {state.last_exit}" if code is not None else "is gone"
            await self._restart(name, f"{name} (pid {gone}) {how}")

    async def _restart(self, name: str, why: str) -> None:
        """Back off, then start again on the same port until it runs (or stop())."""
        server, state = self.servers[name], self.states[name]
        while True:
            if self.clock() - state.started_at >= self.stable_after:
                state.restarts = 0  # a long healthy run: start over from the short delay
            delay = backoff_delay(state.restarts, self.backoff_initial, self.backoff_cap)
            state.restarts += 1
            state.total_restarts += 1
            state.state, state.pid = "down", None
            state.next_try_at = self.clock() + delay
            self.log(f"{why}; restart #{state.total_restarts} in {delay:.1f}s")
            self.on_change()
            if await self._sleep(delay):
                return
            state.state = "starting"
            state.started_at = self.clock()  # a failed start counts as a quick death
            try:
                await asyncio.to_thread(server.start, self.start_timeout, state.port)
            except (ServiceError, OSError) as exc:
                first = (str(exc).strip().splitlines() or [""])[-1][:300]
                why = f"{name} could not start on port {state.port}: {redact_text(first)}"
                continue
            state.pid, state.state = server.running_pid(), "running"
            self.log(f"started {name} (pid {state.pid}) on port {state.port}")
            self.on_change()
            return

    def counters(self) -> dict[str, int | str]:
        """Heartbeat fields: ``<name>.pid``, ``.restarts`` and ``.state`` per server."""
        out: dict[str, int | str] = {}
        for name, state in self.states.items():
            out[f"{name}.pid"] = state.pid or 0
            out[f"{name}.restarts"] = state.total_restarts
            out[f"{name}.state"] = state.state
        return out
