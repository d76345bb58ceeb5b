"""Pages written on several connections at once, their results taken in page order.

The server's side of a COPY into ``ticks`` (partition routing, two indexes, the symbols
check) is most of a page's cost once its rows are encoded; a second connection gives that
work a second backend, as the ingest pipeline's extra writers do (docs/ingest.md). Results
are taken strictly in the order pages were handed over, so the caller moves a symbol's
resume point only when every earlier page of it is committed: a page that fails leaves the
resume point before it, even if later pages were stored (a re-run fetches them again and
their exact keys store nothing twice).
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from storage.tick_writer import TickWriter

T = TypeVar("T")


class OrderedWriters(Generic[T]):
    """``submit(job, write)`` runs ``write(writer, job)`` on a free writer's connection;
    ``done()`` yields (job, result) for finished jobs, oldest first, never out of order."""

    def __init__(self, writers: Sequence[TickWriter]) -> None:
        if not writers:
            raise ValueError("at least one writer")
        self._free: queue.Queue[TickWriter] = queue.Queue()
        for writer in writers:
            self._free.put(writer)
        self.width = len(writers)
        self._pool = ThreadPoolExecutor(max_workers=self.width, thread_name_prefix="history-write")
        self._pending: deque[tuple[T, Future[int]]] = deque()

    def _run(self, write: Callable[[TickWriter, T], int], job: T) -> int:
        writer = self._free.get()
        try:
            return write(writer, job)
        finally:
            self._free.put(writer)

    def submit(self, job: T, write: Callable[[TickWriter, T], int]) -> Iterator[tuple[T, int]]:
        """Hand ``job`` over; yields the results that must be taken before more can run."""
        self._pending.append((job, self._pool.submit(self._run, write, job)))
        while len(self._pending) > self.width:
            yield self._take()

    def done(self) -> Iterator[tuple[T, int]]:
        """Every remaining result, in order."""
        while self._pending:
            yield self._take()

    def _take(self) -> tuple[T, int]:
        job, future = self._pending.popleft()
        return job, future.result()  # re-raises the write's error here, in page order

    def close(self) -> None:
        """Wait for writes in flight (their results are dropped) and stop the threads."""
        for _, future in self._pending:
            future.exception()
        self._pending.clear()
        self._pool.shutdown(wait=True)
