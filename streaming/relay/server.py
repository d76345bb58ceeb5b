"""The relay: Redis pub/sub → browser WebSockets, plus the dashboard page and its history API.

One task reads Redis and never waits on a browser: each message is parsed once and offered to
every client's conflating ``Outbox`` (dict operations only), so the subscription drains at
Redis speed whatever the browsers do (Redis disconnects a subscriber 32 MB behind). One
writer task per client sends whatever its outbox holds as a JSON array frame; a slow client
only delays itself, and meanwhile its state updates conflate.

HTTP (same port, websockets' ``process_request``): ``/`` the dashboard, ``/static/<file>``,
``/api/symbols``, ``/api/candles?symbol=S&limit=N``, ``/api/signals``, ``/api/health``;
``/ws`` upgrades. Bound to a non-loopback address the relay requires ``MARKETFLOW_API_TOKEN``
(``?token=`` or ``Authorization: Bearer``) for the API and the WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.contracts import Channel
from streaming.relay.conflation import (
    BadMessage,
    Outbox,
    conflation_key,
    frame_item,
    message_symbol,
    parse_payload,
)
from streaming.relay.history import History

log = logging.getLogger(__name__)
# websockets logs every plain HTTP answer as "connection rejected (200 OK)": keep its
# warnings and errors only.
WS_LOG = logging.getLogger("streaming.relay.websockets")
WS_LOG.setLevel(logging.WARNING)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_ITEMS_PER_FRAME = 500
# Nothing on the page may come from the internet; data only from this relay.
CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; object-src 'none'"


class RelayConfigError(ValueError):
    """The relay cannot start as configured; the message names the setting to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_config(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise RelayConfigError(
            f"the dashboard would listen on {host}, beyond this machine: set "
            "MARKETFLOW_API_TOKEN (clients then pass ?token=...), or bind 127.0.0.1 "
            "with MARKETFLOW_BIND_HOST."
        )


def token_ok(expected: str | None, query: dict[str, list[str]], headers: Headers) -> bool:
    if not expected:
        return True
    given = query.get("token", [""])[0]
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), expected.encode())


def same_origin(headers: Headers) -> bool:
    """Browsers send Origin on WebSocket handshakes and apply no CORS to them: refuse pages
    of other sites (they could read the feed of a loopback relay). No Origin: not a browser."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("Host", "").lower()


def parse_filter(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    items = {v.strip() for value in values for v in value.split(",") if v.strip()}
    return frozenset(items) or None


@dataclass(eq=False)  # identity semantics: clients live in a set
class Client:
    ws: ServerConnection
    channels: frozenset[str] | None = None  # None: every channel
    symbols: frozenset[str] | None = None  # None: every symbol
    outbox: Outbox = field(default_factory=Outbox)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    frames: int = 0

    def wants(self, channel: str, symbol: str) -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        return self.symbols is None or not symbol or symbol in self.symbols


@dataclass
class RelayStats:
    received: int = 0
    bad_messages: int = 0
    frames_sent: int = 0
    items_sent: int = 0
    redis_errors: int = 0
    clients_total: int = 0


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def json_response(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return _response(status, json.dumps(data).encode(), "application/json")


class Relay:
    def __init__(
        self,
        redis_url: str,
        database_url: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        channels: Iterable[str] = tuple(Channel),
        static_dir: Path = STATIC_DIR,
    ) -> None:
        check_token_config(host, token)
        self.redis_url = redis_url
        self.history = History(database_url)
        self.host = host
        self.requested_port = port
        self.token = token
        self.channels = tuple(channels)
        self.static_dir = static_dir
        self.clients: set[Client] = set()
        self.stats = RelayStats()
        self.subscribed = asyncio.Event()  # set while the Redis subscription is live
        self._server: Server | None = None
        self._reader: asyncio.Task[None] | None = None

    # --- Redis side -------------------------------------------------------------------
    def dispatch(self, channel: str, raw: bytes | str) -> None:
        """Offer one Redis message to every interested client. Never awaits."""
        self.stats.received += 1
        try:
            text, payload = parse_payload(raw)
        except BadMessage as exc:
            self.stats.bad_messages += 1
            if self.stats.bad_messages <= 5 or self.stats.bad_messages % 1000 == 0:
                sample = (raw if isinstance(raw, str) else raw.decode(errors="replace"))[:120]
                log.warning(
                    "skipped bad message on %s (%s; %d so far): %r",
                    channel,
                    exc,
                    self.stats.bad_messages,
                    sample,
                )
            return
        symbol = message_symbol(payload)
        key = conflation_key(channel, payload)
        item = frame_item(channel, text)
        for client in self.clients:
            if client.wants(channel, symbol):
                client.outbox.offer(channel, key, item)
                client.wakeup.set()

    async def _read_redis(self) -> None:
        backoff = 0.5
        while True:
            conn = aioredis.Redis.from_url(self.redis_url)
            pubsub = conn.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.channels)
                self.subscribed.set()
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self.dispatch(channel, message["data"])
            except (RedisError, OSError) as exc:
                self.stats.redis_errors += 1
                log.warning(
                    "Redis subscription lost (%s); retrying in %.1fs", type(exc).__name__, backoff
                )
            except Exception:
                # a bug must not end the only reader (the dashboard would go silent for
                # good): log it with its traceback and subscribe again
                self.stats.redis_errors += 1
                log.exception("relay reader failed; resubscribing in %.1fs", backoff)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await conn.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    # --- browser side -----------------------------------------------------------------
    async def _write(self, client: Client) -> None:
        while True:
            await client.wakeup.wait()
            client.wakeup.clear()
            while client.outbox:
                items = client.outbox.drain(MAX_ITEMS_PER_FRAME)
                # send() waits while the socket's buffer is full: that is the back-pressure
                # that lets this client's outbox conflate instead of queueing.
                await client.ws.send("[" + ",".join(text for _, text in items) + "]")
                client.frames += 1
                self.stats.frames_sent += 1
                self.stats.items_sent += len(items)

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        client = Client(ws, parse_filter(query.get("channels")), parse_filter(query.get("symbols")))
        self.clients.add(client)
        self.stats.clients_total += 1
        writer = asyncio.create_task(self._write(client))
        try:
            async for message in ws:  # optional: {"channels": [...], "symbols": [...]}
                self._refilter(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    @staticmethod
    def _refilter(client: Client, message: str | bytes) -> None:
        try:
            wanted = json.loads(message)
        except (ValueError, TypeError):
            return
        if not isinstance(wanted, dict):
            return
        if "channels" in wanted and isinstance(wanted["channels"], list):
            client.channels = parse_filter([str(c) for c in wanted["channels"]])
        if "symbols" in wanted and isinstance(wanted["symbols"], list):
            client.symbols = parse_filter([str(s) for s in wanted["symbols"]])

    # --- HTTP -------------------------------------------------------------------------
    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/api/health":
            return json_response({"ok": True, "redis": self.subscribed.is_set()})
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == "/ws" or path.startswith("/api/"):
            if not token_ok(self.token, query, request.headers):
                return json_response({"error": "missing or wrong token"}, HTTPStatus.UNAUTHORIZED)
            if path == "/ws":
                if not same_origin(request.headers):
                    return json_response(
                        {"error": "cross-origin WebSocket refused"}, HTTPStatus.FORBIDDEN
                    )
                return None  # continue with the WebSocket handshake
            return await self._api(path, query)
        return json_response({"error": f"no such page: {path}"}, HTTPStatus.NOT_FOUND)

    def _static(self, name: str) -> Response:
        # only plain files directly inside static/: no traversal, no hidden files
        if "/" in name or "\\" in name or name.startswith(".") or not name:
            return json_response({"error": "not found"}, HTTPStatus.NOT_FOUND)
        path = self.static_dir / name
        if not path.is_file():
            return json_response({"error": "not found"}, HTTPStatus.NOT_FOUND)
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return _response(HTTPStatus.OK, path.read_bytes(), ctype)

    async def _api(self, path: str, query: dict[str, list[str]]) -> Response:
        def number(name: str, default: int) -> int:
            try:
                return int(query.get(name, [str(default)])[0])
            except ValueError:
                return default

        try:
            if path == "/api/symbols":
                return json_response({"symbols": await self.history.symbols()})
            if path == "/api/candles":
                symbol = query.get("symbol", [""])[0].strip().upper()
                if not symbol:
                    return json_response({"error": "symbol= is required"}, HTTPStatus.BAD_REQUEST)
                return json_response(await self.history.candles(symbol, number("limit", 390)))
            if path == "/api/signals":
                return json_response({"signals": await self.history.signals(number("limit", 50))})
        except psycopg.Error as exc:
            log.warning("history query %s failed: %s", path, type(exc).__name__)
            return json_response(
                {"error": "database unavailable; live updates still flow"},
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        return json_response({"error": f"no such endpoint: {path}"}, HTTPStatus.NOT_FOUND)

    # --- lifecycle --------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    def counters(self) -> dict[str, int]:
        pending = sum(len(c.outbox) for c in self.clients)
        return {
            "clients": len(self.clients),
            "clients_total": self.stats.clients_total,
            "received": self.stats.received,
            "bad_messages": self.stats.bad_messages,
            "frames_sent": self.stats.frames_sent,
            "items_sent": self.stats.items_sent,
            "conflated": sum(c.outbox.conflated for c in self.clients),
            "pending": pending,
            "redis_errors": self.stats.redis_errors,
            "redis_subscribed": int(self.subscribed.is_set()),
        }

    async def start(self) -> None:
        # listen first: a port that is taken must not leave a reader task running
        self._server = await serve(
            self._handle,
            self.host,
            self.requested_port,
            process_request=self._process_request,
            compression=None,
            logger=WS_LOG,
        )
        self._reader = asyncio.create_task(self._read_redis(), name="relay-redis")
        log.info("relay listening on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
