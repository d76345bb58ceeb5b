"""The platform while ``marketflow up`` runs it: children, embedded servers, status, terminal.

``Platform`` ties together the supervisor of the children, the watch that restarts the
embedded servers (``marketflow.embedded.watch``), the log files and terminal filter
(``marketflow.process_logs``), the status kept for ``marketflow status`` (Redis heartbeat
and ``up-status.json``), and the address block: printed at start, again once every
listener answers (it would otherwise scroll away behind the start-up lines) and on SIGUSR1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from marketflow import up_status
from marketflow.embedded.watch import Restartable, ServerWatch
from marketflow.process_logs import EVENTS_LOG, FileHandler, ProcessLogs, expected_note
from marketflow.supervisor import ChildSpec, Supervisor, describe_exit

READY_WAIT_S = 180.0  # how long the reprint waits for every listener to answer
SCROLLED_LINES = 8  # lines printed after the block that make it worth printing again


def route_own_logging(logs: ProcessLogs, verbose: bool) -> None:
    """``up``'s own log records (migrations, services) go to ``logs/up.log``; the terminal
    keeps warnings and errors (everything with ``-v``)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not verbose:
            handler.setLevel(logging.WARNING)
    to_file = FileHandler(logs.file(EVENTS_LOG))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
    root.addHandler(to_file)


def answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class Platform:
    """Everything ``up`` runs after the services are started and migrated."""

    def __init__(
        self,
        home: Path,
        specs: Sequence[ChildSpec],
        servers: dict[str, Restartable],
        logs: ProcessLogs,
        block: Callable[[], str],
        addresses: list[tuple[str, str]],
        listeners: Sequence[tuple[str, int]],
        stop_timeout: float,
    ) -> None:
        self.home = home
        self.logs = logs
        self.block = block
        self.addresses = addresses
        self.listeners = listeners
        self.supervisor = Supervisor(
            specs,
            stop_timeout=stop_timeout,
            logs=logs,
            quiet_when_stopping=frozenset(s.name for s in specs if s.name.startswith("dagster")),
        )
        self.watch = ServerWatch(servers, self.supervisor.log, on_change=self.write_status)
        self._tasks: list[asyncio.Task[None]] = []
        self._lines_at_block = 0

    async def start(self) -> None:
        await self.watch.start()
        await self.supervisor.start()
        self.show_block()
        self.supervisor.log(expected_note())
        self.supervisor.log(f"every process's full log: {self.logs.directory}/<process>.log")
        self.write_status()
        self._tasks = [
            asyncio.create_task(self._refresh_status(), name="up-status"),
            asyncio.create_task(self._reprint_when_ready(), name="up-ready"),
        ]
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals off Unix
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.show_block)

    async def stop(self) -> None:
        """Children first (they may flush to the servers), never a server restart after."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.watch.stop()
        await self.supervisor.stop()
        up_status.remove(self.home)

    def show_block(self) -> None:
        self._lines_at_block = self.supervisor.terminal_lines
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(self.block() + "\n")
            sys.stdout.flush()

    async def _reprint_when_ready(self) -> None:
        deadline = time.monotonic() + READY_WAIT_S
        waiting = list(self.listeners)
        while waiting and time.monotonic() < deadline:
            waiting = [hp for hp in waiting if not await asyncio.to_thread(answers, *hp)]
            if waiting:
                await asyncio.sleep(1.0)
        if waiting:
            names = ", ".join(f"{h}:{p}" for h, p in waiting)
            self.supervisor.log(f"still not answering after {READY_WAIT_S:.0f}s: {names}")
        if self.supervisor.terminal_lines - self._lines_at_block >= SCROLLED_LINES:
            self.show_block()  # the start-up lines have pushed the first one out of sight

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(up_status.REFRESH_S)
            self.write_status()

    def snapshot(self) -> up_status.UpStatus:
        processes = [
            up_status.Supervised(
                s.name, "server", s.state, s.pid, s.total_restarts, s.last_exit, s.last_down_at
            )
            for s in self.watch.states.values()
        ]
        for name, child in self.supervisor.children.items():
            last = "" if child.last_exit is None else describe_exit(child.last_exit)
            state = self.supervisor.state(name)
            processes.append(
                up_status.Supervised(name, "child", state, child.pid, child.total_restarts, last)
            )
        return up_status.UpStatus(
            os.getpid(), time.time(), str(self.logs.directory), self.addresses, processes
        )

    def write_status(self) -> None:
        try:
            up_status.write(self.home, self.snapshot())
        except OSError as exc:  # a full disk must not stop the platform
            logging.getLogger(__name__).warning("up-status.json not written: %s", exc)

    def counters(self) -> dict[str, int | str]:
        """The ``status:up`` heartbeat: every child's and server's pid and restarts."""
        out: dict[str, int | str] = {"children": len(self.supervisor.children)}
        for name, state in self.supervisor.children.items():
            out[f"{name}.pid"] = state.pid or 0
            out[f"{name}.restarts"] = state.total_restarts
        out.update(self.watch.counters())
        return out
