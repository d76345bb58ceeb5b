"""Where the output of ``marketflow up`` goes (docs/operations.md, logs).

Every line a supervised process prints is kept in its own file,
``$MARKETFLOW_HOME/logs/<process>.log``, rotated by size (``MAX_BYTES`` x ``BACKUPS + 1``
files at most per process). The terminal gets what a person watching needs: the
supervisor's events (starts, exits, restarts, addresses), and the warnings and errors of
every process, each shown once. Debug and info lines (Dagster's step events above all), the
framework warnings we expect (``EXPECTED_WARNINGS``, named once in ``expected_note``) and
repeats of a warning already shown stay in the files.

A record may span several lines (a traceback, a Python warning with its source line):
lines that continue a record share its level and its fate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOG_DIR = "logs"  # under MARKETFLOW_HOME
EVENTS_LOG = "up"  # the supervisor's events and up's own records: logs/up.log
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 4  # <process>.log.1 .. .4: at most 50 MiB per process
REPEAT_WINDOW_S = 300.0  # the same error text (numbers aside) is shown once per window
MAX_SHAPES = 10_000

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LEVEL_NAMES = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
# ours: "2026-01-02 03:04:05,678 INFO  name: ..."; Dagster: "... +0000 - dagster - DEBUG - ...";
# uvicorn and logging's default format: "INFO:     ...", "WARNING:root:..."
_LEVELS = (
    re.compile(rf"^\d{{4}}-\d\d-\d\d[ T][\d:.,]+ ({_LEVEL_NAMES})\b"),
    re.compile(rf" - ({_LEVEL_NAMES}) - "),
    re.compile(rf"^({_LEVEL_NAMES}):"),
)
# warnings.showwarning: "/path/module.py:12: SomeWarning: text"
_WARNING = re.compile(r"(?:^|\s)\S+:\d+: (\w*Warning): (.*)$")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("During handling of the above exception", "The above exception was the direct")


@dataclass(frozen=True)
class Expected:
    """A framework warning that is known, understood and harmless: file only."""

    category: str
    pattern: re.Pattern[str]
    why: str


EXPECTED_WARNINGS: tuple[Expected, ...] = (
    Expected(
        "BetaWarning",
        re.compile(r"."),
        "Dagster marks parts of its API we use as beta (backfill_policy, ...)",
    ),
    Expected(
        "PreviewWarning",
        re.compile(r"."),
        "Dagster marks partitioned asset checks as preview",
    ),
    Expected(
        "DeprecationWarning",
        re.compile(r"websockets\.legacy|websockets\.client|websockets\.server"),
        "alpaca-py still imports websockets' legacy client",
    ),
)


def expected_note() -> str:
    """Said once at start, instead of the warnings themselves at every code-server start."""
    reasons = "; ".join(f"{e.category}: {e.why}" for e in EXPECTED_WARNINGS)
    return f"expected framework warnings are kept in the logs only ({reasons})"


def strip_ansi(line: str) -> str:
    return _ANSI.sub("", line)


LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
}


def level_of(line: str) -> int | None:
    """The logging level a line names, None when it names none (pure)."""
    for pattern in _LEVELS:
        if m := pattern.search(line):
            return LEVELS[m.group(1)]
    if line.startswith(_TRACEBACK):
        return logging.ERROR
    if _WARNING.search(line):
        return logging.WARNING
    return None


def warning_key(line: str) -> tuple[str, str] | None:
    """(category, message) of a Python warning printed on this line."""
    m = _WARNING.search(line)
    return (m.group(1), m.group(2).strip()) if m else None


_STAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T][\d:.,]+(?: [+-]\d{4})?\s*")


def _shape(line: str) -> str:
    """A line without its timestamp and with its numbers blanked: repeats compare equal."""
    return re.sub(r"\d+", "#", _STAMP.sub("", line))


@dataclass
class _Stream:
    """The record a process's output is in the middle of."""

    level: int = logging.INFO
    shown: bool = False
    in_traceback: bool = False


@dataclass
class TerminalFilter:
    """Which lines of which process reach the terminal (every line reaches the files)."""

    threshold: int = logging.WARNING
    expected: tuple[Expected, ...] = EXPECTED_WARNINGS
    repeat_window_s: float = REPEAT_WINDOW_S
    clock: Callable[[], float] = time.monotonic
    hidden_expected: int = 0
    hidden_repeats: int = 0
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _warnings_seen: set[tuple[str, str]] = field(default_factory=set)
    _last_shown: dict[tuple[str, str], float] = field(default_factory=dict)

    def show(self, name: str, raw: str) -> bool:
        line = strip_ansi(raw).rstrip()
        s = self._streams.setdefault(name, _Stream())
        if line.startswith(_TRACEBACK):
            if not s.in_traceback and s.level < logging.WARNING:
                s.level, s.shown = logging.ERROR, True  # a crash: a record of its own
            s.in_traceback = True  # else the traceback of the record above (log.exception)
            return s.shown
        level = level_of(line)
        if s.in_traceback:
            if level is not None and line[0] not in " \t":
                # another process of the same child (a code server) wrote into the middle
                # of the traceback: judge its line alone, the traceback goes on after it
                return level >= self.threshold and self._first(name, line)
            if line and line[0] not in " \t" and not line.startswith(_CHAINED):
                s.in_traceback = False  # "SomeError: text" closes it, and belongs to it
            return s.shown
        if level is None and (not line or line[0] in " \t"):
            return s.shown  # a record's next line: a warning's source line, a dump
        s.level = level if level is not None else logging.INFO
        s.shown = s.level >= self.threshold and self._first(name, line)
        return s.shown

    def _first(self, name: str, line: str) -> bool:
        """False for an expected warning, or a repeat of something shown already."""
        key = warning_key(line)
        if key is not None:
            if any(e.category == key[0] and e.pattern.search(key[1]) for e in self.expected):
                self.hidden_expected += 1
                return False
            if key in self._warnings_seen:  # a warning means the same every time
                self.hidden_repeats += 1
                return False
            self._warnings_seen.add(key)
            return True
        shape = (name, _shape(line))
        now = self.clock()
        last = self._last_shown.get(shape)
        if last is not None and now - last < self.repeat_window_s:
            self.hidden_repeats += 1
            return False
        if len(self._last_shown) > MAX_SHAPES:  # bounded over weeks of distinct messages
            self._last_shown = {
                k: t for k, t in self._last_shown.items() if now - t < self.repeat_window_s
            }
        self._last_shown[shape] = now
        return True


class RotatingLog:
    """One process's log file, rotated by size: ``name.log``, ``name.log.1`` .. ``.N``."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.failures = 0  # writes lost to a full disk: counted, never raised
        self._fd: int | None = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _rotate(self) -> None:
        self.close()
        for i in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            newer = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
            if newer.exists():
                os.replace(newer, older)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)

    def write(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode("utf-8", errors="replace")
        try:
            self._open()  # the size of what an earlier `up` left is counted too
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            fd = self._open()
            os.write(fd, data)
            self._size += len(data)
        except OSError:
            self.failures += 1  # a log that cannot be written must not stop the platform

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class ProcessLogs:
    """The files under ``$MARKETFLOW_HOME/logs`` and the terminal filter in front of them."""

    def __init__(
        self,
        directory: Path,
        terminal: TerminalFilter | None = None,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
    ) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.terminal = terminal if terminal is not None else TerminalFilter()
        self.max_bytes = max_bytes
        self.backups = backups
        self._files: dict[str, RotatingLog] = {}

    def file(self, name: str) -> RotatingLog:
        if name not in self._files:
            path = self.directory / f"{name}.log"
            self._files[name] = RotatingLog(path, self.max_bytes, self.backups)
        return self._files[name]

    def path(self, name: str) -> Path:
        return self.file(name).path

    def line(self, name: str, raw: str) -> bool:
        """Keep one line of ``name``; True when it should also be shown in the terminal."""
        self.file(name).write(strip_ansi(raw))
        return self.terminal.show(name, raw)

    def close(self) -> None:
        for log in self._files.values():
            log.close()


class FileHandler(logging.Handler):
    """A logging handler that writes into one of the rotating files (``up``'s own)."""

    def __init__(self, log: RotatingLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.log.write(self.format(record))
