"""The live feed: one Redis reader fanning out to browser WebSockets.

One task reads Redis and never waits on a browser: each message is parsed once and offered to
every client's conflating ``Outbox`` (dict operations only), so the subscription drains at
Redis speed whatever the browsers do (Redis disconnects a subscriber 32 MB behind). One
writer task per client sends whatever its outbox holds as a JSON array frame; the send waits
while that client's socket buffer is full, so a slow client only delays itself, and
meanwhile its state updates conflate. At most ``max_clients`` clients at once; the next is
closed with code 1013 (try again later) and a reason saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.contracts import Channel
from streaming.web.conflation import (
    BadMessage,
    Outbox,
    conflation_key,
    frame_item,
    message_symbol,
    parse_payload,
)

log = logging.getLogger(__name__)

MAX_ITEMS_PER_FRAME = 500
CLOSE_TOO_MANY_CLIENTS = 1013  # RFC 6455 "Try Again Later"


def parse_filter(values: Iterable[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    items = {v.strip() for value in values for v in value.split(",") if v.strip()}
    return frozenset(items) or None


@dataclass(eq=False)  # identity semantics: clients live in a set
class Client:
    send: Callable[[str], Awaitable[None]]
    peer: tuple[str, int] = ("", 0)
    channels: frozenset[str] | None = None  # None: every channel
    symbols: frozenset[str] | None = None  # None: every symbol
    outbox: Outbox = field(default_factory=Outbox)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    frames: int = 0

    def wants(self, channel: str, symbol: str) -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        return self.symbols is None or not symbol or symbol in self.symbols

    def refilter(self, message: str | bytes) -> None:
        """Apply ``{"channels": [...], "symbols": [...]}`` sent by the page; else ignore."""
        try:
            wanted = json.loads(message)
        except (ValueError, TypeError):
            return
        if not isinstance(wanted, dict):
            return
        if isinstance(wanted.get("channels"), list):
            self.channels = parse_filter([str(c) for c in wanted["channels"]])
        if isinstance(wanted.get("symbols"), list):
            self.symbols = parse_filter([str(s) for s in wanted["symbols"]])


@dataclass
class HubStats:
    received: int = 0
    bad_messages: int = 0
    frames_sent: int = 0
    items_sent: int = 0
    redis_errors: int = 0
    clients_total: int = 0
    clients_refused: int = 0


class Hub:
    def __init__(
        self, redis_url: str, channels: Iterable[str] = tuple(Channel), max_clients: int = 64
    ) -> None:
        self.redis_url = redis_url
        self.channels = tuple(channels)
        self.max_clients = max_clients
        self.clients: set[Client] = set()
        self.stats = HubStats()
        self.subscribed = asyncio.Event()  # set while the Redis subscription is live
        self.reader: asyncio.Task[None] | None = None

    # --- Redis side -------------------------------------------------------------------
    def dispatch(self, channel: str, raw: bytes | str) -> None:
        """Offer one Redis message to every interested client. Never awaits; a message of a
        channel no client listens to is counted and not parsed."""
        self.stats.received += 1
        listeners = [c for c in self.clients if c.channels is None or channel in c.channels]
        if not listeners:
            return
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
        for client in listeners:
            if client.wants(channel, symbol):
                client.outbox.offer(channel, key, item)
                client.wakeup.set()

    async def read_redis(self) -> None:
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
                log.exception("Redis reader failed; resubscribing in %.1fs", backoff)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await conn.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def start(self) -> None:
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self.read_redis(), name="web-redis")

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader

    # --- browser side -----------------------------------------------------------------
    def admit(self, client: Client) -> bool:
        """Register ``client`` unless the cap is reached (no await: check and add are one
        step)."""
        if len(self.clients) >= self.max_clients:
            self.stats.clients_refused += 1
            return False
        self.clients.add(client)
        self.stats.clients_total += 1
        return True

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    async def write(self, client: Client) -> None:
        """Send the client's outbox until cancelled; runs as that client's own task."""
        while True:
            await client.wakeup.wait()
            client.wakeup.clear()
            while client.outbox:
                items = client.outbox.drain(MAX_ITEMS_PER_FRAME)
                # send() waits while the socket's buffer is full: that is the back-pressure
                # that lets this client's outbox conflate instead of queueing.
                await client.send("[" + ",".join(text for _, text in items) + "]")
                client.frames += 1
                self.stats.frames_sent += 1
                self.stats.items_sent += len(items)

    def counters(self) -> dict[str, int]:
        return {
            "clients": len(self.clients),
            "clients_total": self.stats.clients_total,
            "clients_refused": self.stats.clients_refused,
            "received": self.stats.received,
            "bad_messages": self.stats.bad_messages,
            "frames_sent": self.stats.frames_sent,
            "items_sent": self.stats.items_sent,
            "conflated": sum(c.outbox.conflated for c in self.clients),
            "pending": sum(len(c.outbox) for c in self.clients),
            "redis_errors": self.stats.redis_errors,
            "redis_subscribed": int(self.subscribed.is_set()),
        }
