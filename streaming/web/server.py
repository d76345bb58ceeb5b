"""``WebServer``: the dashboard server (Starlette under uvicorn, in this process's event loop).

It binds its socket before anything else starts (a taken port fails ``start()`` with
OSError and leaves no task behind), then runs uvicorn on it and the Redis reader beside it.
Bound to a non-loopback address it refuses to start without ``MARKETFLOW_API_TOKEN``.

Writes always need a token: ``token`` (``MARKETFLOW_API_TOKEN``, which guards reads too),
else ``write_token`` (``MARKETFLOW_WEB_TOKEN``, handed down by ``marketflow up``), else one
generated here (``token_generated``); with either of the last two, reads from loopback are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

import uvicorn

from core.contracts import Channel
from streaming.web.app import build_app
from streaming.web.hub import Client, Hub, HubStats
from streaming.web.pages import STATIC_DIR
from streaming.web.queries import Queries
from streaming.web.security import (
    WebConfigError,
    allowed_hosts,
    check_token_config,
    generate_token,
    is_loopback,
)

log = logging.getLogger(__name__)
# uvicorn logs every WebSocket handshake at INFO with its query string, which may carry the
# token: keep its warnings and errors only (no access log either)
UVICORN_LOG = logging.getLogger("uvicorn.error")

__all__ = ["WebConfigError", "WebServer", "check_token_config", "is_loopback"]


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the caller owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and accepted connections inherit it; with proto 0 every small frame
    # waited for the browser's delayed ACK (p99 +20 ms in the latency benchmark)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class WebServer:
    def __init__(
        self,
        redis_url: str,
        database_url: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        write_token: str | None = None,
        channels: Iterable[str] = tuple(Channel),
        max_clients: int = 64,
        extra_hosts: Iterable[str] = (),
        static_dir: Path = STATIC_DIR,
    ) -> None:
        check_token_config(host, token)
        self.host = host
        self.requested_port = port
        self.token_generated = token is None and write_token is None
        self.token: str = token or write_token or generate_token()  # what writes need
        self.reads_open = token is None
        self.hub = Hub(redis_url, channels, max_clients)
        self.queries = Queries(database_url)
        self.app = build_app(
            self.hub,
            self.queries,
            hosts=allowed_hosts(host, extra_hosts),
            token=self.token,
            reads_open=self.reads_open,
            static_dir=static_dir,
        )
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    # the hub's state, under the names the server always had
    @property
    def clients(self) -> set[Client]:
        return self.hub.clients

    @property
    def stats(self) -> HubStats:
        return self.hub.stats

    @property
    def subscribed(self) -> asyncio.Event:
        return self.hub.subscribed

    @property
    def link(self) -> str:
        """The dashboard's address with the token, to open once (it leaves the address bar)."""
        return f"http://{self.host}:{self.port}/?token={self.token}"

    @property
    def port(self) -> int:
        if self._sock is None:
            return self.requested_port
        return int(self._sock.getsockname()[1])

    def counters(self) -> dict[str, int]:
        return self.hub.counters()

    async def start(self) -> None:
        self._sock = _bind(self.host, self.requested_port)  # OSError here: nothing started
        UVICORN_LOG.setLevel(logging.WARNING)
        config = uvicorn.Config(
            self.app,
            ws="websockets-sansio",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=3,
            ws_ping_interval=20,
            # no compression: frames are small, and deflate would cost CPU per client and
            # hide a stalled client's back-pressure until megabytes had been compressed
            ws_per_message_deflate=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError("the web server stopped while starting")
            await asyncio.sleep(0.01)
        self.hub.start()
        log.info("dashboard listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)
        await self.hub.stop()
        await self.queries.db.close()
        if self._sock is not None:
            self._sock.close()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
