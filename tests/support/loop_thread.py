"""An asyncio loop on a background thread, so one fake server serves many tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def serving(*fakes: Any) -> Iterator[tuple[Any, ...]]:
    """Start fake servers (``start``/``stop`` coroutines) on one background loop for a
    module of tests; stop them, then the loop, on exit."""
    loop = LoopThread()
    started: list[Any] = []
    try:
        for fake in fakes:
            loop.run(fake.start())
            started.append(fake)
        yield fakes
    finally:
        for fake in reversed(started):
            loop.run(fake.stop())
        loop.close()
