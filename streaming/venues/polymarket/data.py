"""CLOB market-channel WebSocket client: shards, heartbeat, reconnect, watchdog.

Protocol (Polymarket market channel, no auth):
- after connect: ``{"assets_ids": [...], "type": "market"}`` (the server answers with a
  ``book`` snapshot per asset); later changes on the same socket:
  ``{"assets_ids": [...], "operation": "subscribe" | "unsubscribe"}``;
- at most 500 assets per connection, so assets are sharded over several connections;
- the client sends the text ``PING`` about every 10 s; the server answers ``PONG``.

Every disconnect, clean or not, resets the shard's books (they stay invalid until the
fresh snapshots the resubscription brings) and reconnects after a backoff with jitter,
so a server that closes cleanly at once cannot make the client spin. A connection that
says nothing (not even PONG) for ``silence_seconds`` is closed and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from streaming.providers.router_backoff import backoff_delay as _equal_jitter

log = logging.getLogger(__name__)

FrameHandler = Callable[[str | bytes, float], None]  # (frame, monotonic now)
AssetsHandler = Callable[[list[str], float], None]


def subscribe_message(assets: Iterable[str]) -> str:
    return json.dumps({"assets_ids": list(assets), "type": "market"})


def operation_message(assets: Iterable[str], operation: str) -> str:
    if operation not in ("subscribe", "unsubscribe"):
        raise ValueError(operation)
    return json.dumps({"assets_ids": list(assets), "operation": operation})


def shard(assets: Iterable[str], size: int) -> list[list[str]]:
    """Split assets into groups of at most ``size`` (order kept, duplicates dropped)."""
    unique = list(dict.fromkeys(assets))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (0-based): the providers' equal-jitter backoff
    (``router_backoff``), in [c/2, c] with c = min(cap, base·2^attempt)."""
    return _equal_jitter(attempt + 1, base, cap, rng.random())


class Shard:
    """One connection carrying up to ``max_assets`` assets, reconnecting forever."""

    def __init__(self, channel: MarketChannel, index: int, assets: list[str]) -> None:
        self.channel = channel
        self.index = index
        self.assets: list[str] = assets
        self.ws: ClientConnection | None = None
        self.connects = 0
        self.last_frame = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"polymarket-shard-{self.index}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def send(self, text: str) -> None:
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(text)

    async def _run(self) -> None:
        ch = self.channel
        attempt = 0
        while True:
            started = time.monotonic()
            got_data = False
            try:
                async with connect(
                    ch.url,
                    open_timeout=ch.open_timeout,
                    max_size=ch.max_frame_bytes,
                    ping_interval=None,  # the venue's own text PING is the heartbeat
                    close_timeout=2,
                ) as ws:
                    self.ws = ws
                    self.connects += 1
                    ch.connects += 1
                    self.last_frame = time.monotonic()
                    if self.assets:
                        await ws.send(subscribe_message(self.assets))
                    got_data = await self._session(ws)
                log.info("polymarket shard %d: connection closed by server", self.index)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.warning("polymarket shard %d: %s", self.index, exc.__class__.__name__)
            except Exception:  # a bug downstream must not end the shard: log, reconnect
                ch.errors += 1
                log.exception("polymarket shard %d: unexpected error", self.index)
            finally:
                self.ws = None
                # books from this connection are void until the resubscribe's snapshots
                ch.on_reset(list(self.assets), time.monotonic())
            if got_data and time.monotonic() - started > ch.healthy_seconds:
                attempt = 0  # a connection that worked for a while resets the backoff
            delay = backoff_delay(attempt, ch.backoff_base, ch.backoff_max, ch.rng)
            attempt += 1
            ch.reconnects += 1
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> bool:
        ch = self.channel
        got_data = False
        pinger = asyncio.create_task(self._ping(ws))
        watchdog = asyncio.create_task(self._watchdog(ws))
        try:
            async for frame in ws:
                now = time.monotonic()
                self.last_frame = now
                if frame == "PONG" or frame == b"PONG":
                    ch.on_alive(self.assets, now)
                    continue
                got_data = True
                ch.frames += 1
                ch.on_frame(frame, now)
        finally:
            # awaited, not just cancelled: a task left pending outlives its connection
            # (and its shard, on stop) and a failure inside it would never be retrieved
            pinger.cancel()
            watchdog.cancel()
            await asyncio.gather(pinger, watchdog, return_exceptions=True)
        return got_data

    async def _ping(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.channel.ping_seconds)
                await ws.send("PING")

    async def _watchdog(self, ws: ClientConnection) -> None:
        ch = self.channel
        while True:
            await asyncio.sleep(min(1.0, ch.silence_seconds / 4))
            if time.monotonic() - self.last_frame > ch.silence_seconds:
                ch.recycled += 1
                log.warning(
                    "polymarket shard %d: silent for %.0f s, recycling",
                    self.index,
                    ch.silence_seconds,
                )
                await ws.close(code=4000, reason="silent")
                return


class MarketChannel:
    """All shards; ``subscribe``/``unsubscribe`` adjust the asset set while running."""

    def __init__(
        self,
        url: str,
        on_frame: FrameHandler,
        on_reset: AssetsHandler,
        on_alive: AssetsHandler,
        *,
        max_assets: int = 500,
        ping_seconds: float = 10.0,
        silence_seconds: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        healthy_seconds: float = 5.0,
        open_timeout: float = 10.0,
        max_frame_bytes: int = 64 * 1024 * 1024,
        seed: int | None = None,
    ) -> None:
        self.url = url
        self.on_frame = on_frame
        self.on_reset = on_reset
        self.on_alive = on_alive
        self.max_assets = max(1, min(500, max_assets))
        self.ping_seconds = ping_seconds
        # three missed heartbeats: the socket is dead even if TCP has not noticed
        self.silence_seconds = silence_seconds or max(3 * ping_seconds, 5.0)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.healthy_seconds = healthy_seconds
        self.open_timeout = open_timeout
        self.max_frame_bytes = max_frame_bytes
        self.rng = random.Random(seed)
        self.shards: list[Shard] = []
        self._next_index = 0  # shard ids stay unique when idle shards are closed
        self.frames = self.connects = self.reconnects = self.recycled = self.errors = 0

    @property
    def assets(self) -> list[str]:
        return [a for s in self.shards for a in s.assets]

    async def start(self, assets: Iterable[str]) -> None:
        for group in shard(assets, self.max_assets):
            self._new_shard(group)

    def _new_shard(self, assets: list[str]) -> Shard:
        s = Shard(self, self._next_index, assets)
        self._next_index += 1
        self.shards.append(s)
        s.start()
        return s

    async def subscribe(self, assets: Iterable[str]) -> None:
        known = set(self.assets)
        todo = [a for a in dict.fromkeys(assets) if a not in known]
        for s in self.shards:
            if not todo:
                return
            room = self.max_assets - len(s.assets)
            if room <= 0:
                continue
            take, todo = todo[:room], todo[room:]
            s.assets.extend(take)
            await s.send(operation_message(take, "subscribe"))
        for group in shard(todo, self.max_assets):
            self._new_shard(group)

    async def resnapshot(self, assets: Iterable[str]) -> None:
        """Ask for fresh ``book`` snapshots (a subscribe operation on the carrying shard)."""
        wanted = set(assets)
        for s in self.shards:
            mine = [a for a in s.assets if a in wanted]
            if mine:
                await s.send(operation_message(mine, "subscribe"))

    async def unsubscribe(self, assets: Iterable[str]) -> None:
        """Drop assets; a shard left with none is closed (an idle connection would only
        hold a slot and keep reconnecting for nothing)."""
        drop = set(assets)
        idle: list[Shard] = []
        for s in self.shards:
            gone = [a for a in s.assets if a in drop]
            if gone:
                s.assets = [a for a in s.assets if a not in drop]
                # said even before a close: the venue stops sending at once
                await s.send(operation_message(gone, "unsubscribe"))
                if not s.assets:
                    idle.append(s)
        for s in idle:
            self.shards.remove(s)
            await s.stop()  # a clean close frame, its heartbeat tasks awaited
            log.info("polymarket shard %d: no assets left, closed", s.index)

    async def stop(self) -> None:
        for s in self.shards:
            await s.stop()
