"""The dashboard server in a thread of its own, for tests driven from synchronous code
(Playwright's sync API, plain HTTP clients): ``serve()`` yields a started ``WebServer``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from streaming.web import WebServer

T = TypeVar("T")


class Served:
    def __init__(self, server: WebServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The header a write needs (the server's token: given, or generated at start)."""
        return {"Authorization": f"Bearer {self.server.token}"}

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the server's loop (to read its state without racing it)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def serve(redis_url: str, db_url: str | None, **kw: Any) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-under-test", daemon=True)
    thread.start()
    server = WebServer(redis_url, db_url, host="127.0.0.1", port=0, **kw)
    served = Served(server, loop)
    try:
        served.call(server.start())
        served.call(asyncio.wait_for(server.subscribed.wait(), 10))
        yield served
    finally:
        served.call(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
