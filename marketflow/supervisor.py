"""Supervisor of long-running child processes, pure asyncio (docs/architecture.md).

Each child (a ``marketflow <cmd>`` or a Dagster command line) runs in its own process group
so a stop reaches everything it spawned (Dagster's code server lingers otherwise). Output
lines are prefixed with the child's name; given ``ProcessLogs``, every line goes to the
child's own rotating file and only events, warnings and errors to the terminal
(``marketflow.process_logs``). A child that dies is restarted with capped exponential
backoff and the restart is logged with its exit code. ``stop()`` sends SIGTERM to every
group, waits, then SIGKILLs whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from core.settings import STOP_TIMEOUT_S
from marketflow.process_logs import EVENTS_LOG, ProcessLogs

PR_SET_PDEATHSIG = 1
MAX_EXITS = 100
try:  # resolved before any fork: the pre-exec hook should not load libraries
    _PRCTL: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


@dataclass(frozen=True)
class ChildSpec:
    """One supervised command line."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # full environment; None inherits ours
    cwd: str | None = None


@dataclass
class ChildState:
    spec: ChildSpec
    pid: int | None = None
    restarts: int = 0  # consecutive quick deaths, drives the backoff
    total_restarts: int = 0
    last_exit: int | None = None
    started_at: float = 0.0
    exits: list[int] = field(default_factory=list)  # the latest MAX_EXITS exit codes


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def backoff_delay(attempt: int, initial: float, cap: float) -> float:
    """Delay before restart number ``attempt`` (0-based): doubling from ``initial``, capped."""
    if attempt <= 0:
        return initial
    return min(cap, initial * (2.0 ** min(attempt, 30)))


def prefix_line(name: str, line: str, width: int) -> str:
    """``[name] line`` with names padded to a common width so columns line up."""
    return f"{'[' + name + ']':<{width + 2}} {line.rstrip()}"


def describe_exit(code: int) -> str:
    """Exit status in words; asyncio reports death by signal N as -N."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


def _child_preexec() -> None:
    # Runs in the child between fork and exec. Dagster ignores SIGTERM when started with
    # SIGINT ignored, which happens whenever we were started from a
    # non-interactive shell: restore the default. Ask the kernel to SIGTERM the child if the
    # supervisor dies without a clean stop, so a SIGKILLed `up` leaves no orphan leader.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Runs children until ``stop()``; restarts the ones that die."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        out: TextIO | None = None,
        backoff_initial: float = 1.0,
        backoff_cap: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = STOP_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        logs: ProcessLogs | None = None,
        quiet_when_stopping: frozenset[str] = frozenset(),
    ) -> None:
        self.children = {spec.name: ChildState(spec) for spec in specs}
        if len(self.children) != len(specs):
            raise ValueError("child names must be unique")
        self.out = out if out is not None else sys.stdout
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.stable_after = stable_after  # a run this long resets the backoff
        self.stop_timeout = stop_timeout
        self.clock = clock
        self.logs = logs
        # children whose interrupted work is expected noise at a stop (Dagster's runs and
        # code servers print tracebacks): their output then goes to their files only
        self.quiet_when_stopping = quiet_when_stopping if logs is not None else frozenset()
        self.terminal_lines = 0  # lines this supervisor printed (events and children's)
        self.width = max([len(s.name) for s in specs] + [len("supervisor"), len("postgres")])
        self._stopping = asyncio.Event()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def log(self, message: str, name: str = "supervisor") -> None:
        """A platform event: in the terminal and in ``up``'s own log file."""
        if self.logs is not None:
            self.logs.file(EVENTS_LOG).write(f"{utc_stamp()} {prefix_line(name, message, 0)}")
        self._terminal(name, message)

    def _terminal(self, name: str, line: str) -> None:
        # A closed terminal or pipe must not stop the pumps: a child whose output is no
        # longer drained would block on a full pipe.
        with contextlib.suppress(OSError, ValueError):
            self.out.write(prefix_line(name, line, self.width) + "\n")
            self.out.flush()
            self.terminal_lines += 1

    def state(self, name: str) -> str:
        """``running`` while the child's process lives, else ``restarting`` (backoff)."""
        return "running" if name in self._procs else "restarting"

    async def _spawn(self, state: ChildState) -> asyncio.subprocess.Process:
        spec = state.spec
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(spec.env) if spec.env is not None else None,
            cwd=spec.cwd,
            start_new_session=True,  # own session and process group: pgid == pid
            preexec_fn=_child_preexec,
            limit=1 << 20,  # long log lines (tracebacks, JSON) must not break the reader
        )
        state.pid = proc.pid
        state.started_at = self.clock()
        return proc

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line beyond the limit: emit what is buffered
                raw = await proc.stdout.read(1 << 16)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace")
            if self.logs is not None:
                shown = self.logs.line(name, line)  # every line reaches the file
                if not shown or (self._stopping.is_set() and name in self.quiet_when_stopping):
                    continue
            self._terminal(name, line)

    async def _run_child(self, state: ChildState) -> None:
        name = state.spec.name
        while not self._stopping.is_set():
            # set before the attempt: a spawn that fails must count as a quick death too,
            # or the backoff would reset on every attempt
            state.started_at = self.clock()
            try:
                proc = await self._spawn(state)
            except (OSError, ValueError, TypeError) as exc:  # a bad path, argv or env
                code = 127
                self.log(f"{name} could not start: {exc}")
            else:
                self._procs[name] = proc
                self.log(f"started {name} (pid {proc.pid})")
                if self._stopping.is_set():  # stop() began while we were spawning
                    _signal_group(proc.pid, signal.SIGTERM)
                pump = asyncio.create_task(self._pump(name, proc))
                code = await proc.wait()
                # Grandchildren may still hold the pipe or linger in the group: end them so
                # a restart never runs beside its own leftovers.
                if _group_alive(proc.pid):
                    _signal_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(pump, timeout=2.0)
                self._procs.pop(name, None)
            state.last_exit = code
            state.exits.append(code)
            del state.exits[:-MAX_EXITS]  # bounded: a child may crash-loop for days
            if self._stopping.is_set():
                return
            if self.clock() - state.started_at >= self.stable_after:
                state.restarts = 0
            delay = backoff_delay(state.restarts, self.backoff_initial, self.backoff_cap)
            state.restarts += 1
            state.total_restarts += 1
            self.log(
                f"{name} exited with {describe_exit(code)}; restart #{state.total_restarts} "
                f"in {delay:.1f}s"
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def start(self) -> None:
        for state in self.children.values():
            self._tasks.append(asyncio.create_task(self._run_child(state)))

    async def wait(self) -> None:
        """Until every child loop ended (only after ``stop()``)."""
        if self._tasks:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for name, result in zip(self.children, results, strict=False):
                if isinstance(result, Exception):  # never swallowed without a word
                    self.log(f"supervising {name} failed: {result!r}")

    async def stop(self) -> None:
        """SIGTERM every process group, wait up to ``stop_timeout``, then SIGKILL."""
        self._stopping.set()
        quiet = sorted(n for n in self.quiet_when_stopping if n in self._procs)
        if quiet and self.logs is not None:
            files = ", ".join(str(self.logs.path(n)) for n in quiet)
            self.log(f"output of {', '.join(quiet)} while stopping: in {files} only")
        signalled: set[int] = set()
        deadline = self.clock() + self.stop_timeout
        # Loop rather than snapshot: a child whose spawn was in flight registers late.
        while True:
            for name, proc in list(self._procs.items()):
                if proc.pid not in signalled:
                    self.log(f"stopping {name} (pid {proc.pid})")
                    _signal_group(proc.pid, signal.SIGTERM)
                    signalled.add(proc.pid)
            if all(task.done() for task in self._tasks) or self.clock() >= deadline:
                break
            await asyncio.sleep(0.05)
        for name, proc in list(self._procs.items()):
            if _group_alive(proc.pid):
                self.log(f"{name} did not stop in {self.stop_timeout:.0f}s: SIGKILL")
                _signal_group(proc.pid, signal.SIGKILL)
        await self.wait()
        self.log("all children stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.stop()


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (the loop keeps running to stop children cleanly)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
