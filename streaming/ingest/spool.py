"""Durable buffer for rows PostgreSQL has not taken yet (docs/ingest.md).

Rows wait in memory, in arrival order, up to ``memory_rows``; beyond that the *oldest*
chunks move to an append-only spool file under ``$MARKETFLOW_HOME/spool``. Since the file
only ever receives chunks older than anything still in memory, "spool first, then memory"
is arrival order, which ``next_chunk`` / ``commit`` follow when the database is back.

File format: records of ``[u32 length][u32 crc32][Arrow IPC stream bytes]``. A record torn
by a crash while appending can only be the file's tail: opening the spool cuts that tail
off (the records before it are kept, and later appends start from a clean end). A failed
append (disk full, a file-size limit) is cut back to the file's previous end and its chunk
stays in memory, where the next spill retries it after ``SPILL_RETRY_S``; nothing is
dropped. A whole record with a bad checksum (bit rot) is skipped, counted and reported.
A fully drained file is deleted; a process that restarts with a non-empty spool drains it
first. Re-sending a chunk whose commit was not confirmed is safe because the tick writer is
idempotent on (symbol_id, ts, trade_id) — at-least-once delivery, exactly-once storage.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import time
import zlib
from collections import deque
from pathlib import Path

import pyarrow as pa

from streaming.ingest.rows import TickRows

log = logging.getLogger(__name__)
_HEADER = struct.Struct("<II")
_OFFSET_SUFFIX = ".offset"
SPILL_RETRY_S = 1.0  # after a failed spill, the next attempt waits this long


def encode(rows: TickRows) -> bytes:
    batch = rows.to_arrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> TickRows:
    reader = pa.ipc.open_stream(payload)
    return TickRows.concat([TickRows.from_arrow(b) for b in reader])


def claim(path: Path, attempts: int = 8) -> tuple[Path, int]:
    """An exclusive spool path: ``path`` or ``name-2``, ``name-3``… when another live
    process (say a second ``marketflow ingest`` of the same provider) holds it. The names
    are deterministic, so whichever process starts next drains what a crashed one left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, attempts + 1):
        candidate = path if i == 1 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        fd = os.open(candidate.with_name(candidate.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return candidate, fd
    raise RuntimeError(f"{attempts} processes already spool to {path.parent}; stop one")


class SpoolFile:
    """The append-only file plus a read offset (persisted beside it after each commit)."""

    def __init__(self, path: Path) -> None:
        path, self._lock_fd = claim(path)
        self.path = path
        self.offset_path = path.with_name(path.name + _OFFSET_SUFFIX)
        self.offset = self._load_offset()
        self.rows = 0  # rows appended by this process and not yet committed (approximate)
        self.torn = 0  # torn tails cut off and corrupt records skipped
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        """Truncate a record a crash left half-written at the end (lengths walk the file)."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if self.offset > size:
            log.error("spool %s: offset %d beyond its end %d; starting over", self.path,
                      self.offset, size)  # fmt: skip
            self.offset = 0
        pos = self.offset
        with open(self.path, "rb") as fh:
            while pos < size:
                fh.seek(pos)
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                length, _ = _HEADER.unpack(header)
                if pos + _HEADER.size + length > size:
                    break
                pos += _HEADER.size + length
        if pos < size:
            self.torn += 1
            log.error(
                "spool %s: torn record at byte %d (a crash while appending): cut %d bytes;"
                " the records before it are kept",
                self.path,
                pos,
                size - pos,
            )
            os.truncate(self.path, pos)

    def _load_offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    @property
    def pending(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > self.offset

    def append(self, rows: TickRows) -> None:
        """Append one record durably, or raise OSError with the file as it was before."""
        record = memoryview(encode(rows))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                while record:
                    record = record[os.write(fd, record) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # never leave half a record behind
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        self.rows += len(rows)

    def peek(self) -> tuple[TickRows, int] | None:
        """The next unread chunk and the offset after it, or None at the end."""
        while self.path.exists():
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                header = fh.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return None
                length, crc = _HEADER.unpack(header)
                payload = fh.read(length)
            after = self.offset + _HEADER.size + length
            if len(payload) < length:  # a torn tail: cut it, keep everything before
                self.torn += 1
                log.error("spool %s: torn record at byte %d: cut", self.path, self.offset)
                os.truncate(self.path, self.offset)
                return None
            if zlib.crc32(payload) != crc:  # a whole record gone bad: skip only it
                self.torn += 1
                log.error(
                    "spool %s: record at byte %d fails its checksum (%d bytes): skipped",
                    self.path,
                    self.offset,
                    length,
                )
                self.commit(after, 0)
                continue
            return decode(payload), after
        return None

    def commit(self, new_offset: int, rows: int) -> None:
        self.offset = new_offset
        self.rows = max(0, self.rows - rows)
        if self.path.stat().st_size <= new_offset:
            self.reset()
        else:
            tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
            tmp.write_text(str(new_offset))
            tmp.replace(self.offset_path)

    def release(self) -> None:
        """Give the path up for another process (what is in it stays for the next one)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.offset_path.unlink(missing_ok=True)
        self.offset = 0
        self.rows = 0


class DurableBuffer:
    """Memory (bounded) + spool file, drained in arrival order."""

    def __init__(self, spool_path: Path, memory_rows: int) -> None:
        self.memory: deque[TickRows] = deque()
        self.memory_rows = 0
        self.limit = memory_rows
        self.spool = SpoolFile(spool_path)
        self.spilled_rows = 0  # total rows ever written to the spool (counter)
        self.spill_failures = 0  # spills that failed (disk full): their rows stayed in memory
        self._spill_retry_at = float("-inf")
        self._inflight: tuple[str, int, int] | None = None  # (where, rows, next offset)

    def __len__(self) -> int:
        return self.memory_rows + self.spool.rows

    def close(self) -> None:
        self.spool.release()

    @property
    def empty(self) -> bool:
        return not self.memory and not self.spool.pending

    def push(self, rows: TickRows) -> None:
        if len(rows) == 0:
            return
        self.memory.append(rows)
        self.memory_rows += len(rows)
        self._enforce()

    def _enforce(self) -> None:
        # Keep the newest in memory; the oldest go to disk, after anything already there.
        # Never while a write is in flight: the chunks being written are the oldest in
        # memory, and if that write fails they must reach the spool before newer ones.
        if self._inflight is not None or time.monotonic() < self._spill_retry_at:
            return
        while self.memory_rows > self.limit and self.memory:
            if not self._spill_oldest():
                return

    def _spill_oldest(self) -> bool:
        """Move the oldest memory chunk to the spool; on failure it stays in memory."""
        rows = self.memory[0]
        try:
            self.spool.append(rows)
        except OSError as exc:
            self.spill_failures += 1
            self._spill_retry_at = time.monotonic() + SPILL_RETRY_S
            if self.spill_failures == 1 or self.spill_failures % 100 == 0:
                log.error(
                    "spool %s: write failed (%s); %d rows stay in memory and the spill is"
                    " retried (failures so far: %d)",
                    self.spool.path,
                    exc.strerror or exc.__class__.__name__,
                    self.memory_rows,
                    self.spill_failures,
                )
            return False
        self.memory.popleft()
        self.memory_rows -= len(rows)
        self.spilled_rows += len(rows)
        return True

    def spill_all(self) -> int:
        """Everything in memory to the spool now (shutdown), in order, including a chunk
        whose database write is still in flight (storing it twice is harmless: the tick
        writer is idempotent). Returns the rows that could not be written (disk full)."""
        self._inflight = None
        while self.memory:
            if not self._spill_oldest():
                break
        return self.memory_rows

    def next_chunk(self, max_rows: int) -> TickRows | None:
        """The oldest pending rows (spool before memory); call ``commit`` once stored."""
        if self.spool.pending:
            peeked = self.spool.peek()
            if peeked is not None:
                rows, offset = peeked
                self._inflight = ("spool", len(rows), offset)
                return rows
        if not self.memory:
            return None
        # coalesce small memory chunks into one write of up to max_rows
        take: list[TickRows] = []
        count = 0
        for chunk in self.memory:
            if take and count + len(chunk) > max_rows:
                break
            take.append(chunk)
            count += len(chunk)
        self._inflight = ("memory", len(take), count)
        return TickRows.concat(take)

    def commit(self) -> None:
        """The chunk returned by ``next_chunk`` is stored: forget it."""
        if self._inflight is None:
            return
        where, n, extra = self._inflight
        self._inflight = None
        if where == "spool":
            self.spool.commit(extra, n)
        else:
            for _ in range(n):
                self.memory_rows -= len(self.memory.popleft())
        self._enforce()

    def release(self) -> None:
        """The write of the chunk from ``next_chunk`` failed: it stays first in line."""
        self._inflight = None
        self._enforce()
