"""The bookkeeping of a replayable demo run (``DEMO_START``; docs/chaos.md).

``RunLog`` lives in the ingest process beside the demo provider: it appends, as JSON lines,
the per-symbol sequence ranges the consumer took, and it reads the control file that
simulates a dropped provider connection. ``read_ledger`` gives a checker the union of what
was emitted. Ranges are half-open ``[lo, hi)`` of the symbol's sequence numbers (the ``n``
of ``trade_id`` ``<tag>-<n>``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from core.timestamps import NS

LEDGER_FILE = "demo-ledger.jsonl"  # under MARKETFLOW_HOME
DISCONNECT_FILE = "demo-disconnect"  # its text: seconds the simulated outage lasts
CONTROL_CHECK_NS = NS  # how often the control file is looked for


class RunLog:
    def __init__(self, run_dir: Path, tag: str) -> None:
        self.run_dir = run_dir
        self.tag = tag
        self.disconnects = 0
        self._taken: dict[str, list[int]] = {}  # symbol → [lo, hi) taken since last write
        self._unwritten: list[bytes] = []  # lines the disk refused, written before the next
        self._fd: int | None = None
        self.write_failures = 0
        self._paused_until = 0
        self._next_check = 0

    def took(self, symbol: str, lo: int, hi: int) -> None:
        """The consumer took sequence numbers [lo, hi) of ``symbol``."""
        seen = self._taken.get(symbol)
        if seen is not None and seen[1] == lo:
            seen[1] = hi
            return
        if seen is not None:  # not contiguous with what is pending: write that first
            self.write()
        self._taken[symbol] = [lo, hi]

    def write(self) -> None:
        """Append what was taken since the last write (one line); nothing when nothing.

        A line the disk refuses (full, a file-size limit: a chaos fault) is cut back off
        and kept, and goes out before the next one: the ledger never holds half a line."""
        if self._taken:
            line = {"pid": os.getpid(), "tag": self.tag, "ranges": self._taken}
            self._unwritten.append((json.dumps(line) + "\n").encode())
            self._taken = {}
        if not self._unwritten:
            return
        if self._fd is None:
            self._fd = os.open(self.run_dir / LEDGER_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               0o644)  # fmt: skip
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            data = memoryview(b"".join(self._unwritten))
            while data:  # a killed process loses nothing written (the page cache has it)
                data = data[os.write(self._fd, data) :]
        except OSError:
            self.write_failures += 1
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            return
        self._unwritten = []

    def close(self) -> None:
        self.write()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def disconnected(self, now_ns: int) -> bool:
        """Whether a simulated outage is on at ``now_ns``; a new one is picked up from the
        control file (read, then removed) at most once per ``CONTROL_CHECK_NS``."""
        if now_ns >= self._next_check:
            self._next_check = now_ns + CONTROL_CHECK_NS
            seconds = take_disconnect(self.run_dir)
            if seconds > 0:
                self._paused_until = now_ns + int(seconds * NS)
                self.disconnects += 1
        return now_ns < self._paused_until


def request_disconnect(run_dir: Path, seconds: float) -> None:
    """Ask the running demo provider to drop its feed for ``seconds`` (atomic rename)."""
    tmp = run_dir / (DISCONNECT_FILE + ".tmp")
    tmp.write_text(f"{seconds}\n")
    os.replace(tmp, run_dir / DISCONNECT_FILE)


def take_disconnect(run_dir: Path) -> float:
    control = run_dir / DISCONNECT_FILE
    try:
        text = control.read_text()
        control.unlink()
    except OSError:
        return 0.0
    try:
        seconds = float(text.strip() or 0)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-touching union of half-open ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def read_ledger(path: Path) -> tuple[set[str], dict[str, list[tuple[int, int]]]]:
    """(tags seen, symbol → merged emitted ranges); a torn last line is skipped."""
    tags: set[str] = set()
    raw: dict[str, list[tuple[int, int]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return tags, {}
    for text in lines:
        try:
            line = json.loads(text)
            tags.add(str(line["tag"]))
            for symbol, (lo, hi) in line["ranges"].items():
                raw.setdefault(symbol, []).append((int(lo), int(hi)))
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill mid-write
    return tags, {symbol: merge(r) for symbol, r in raw.items()}
