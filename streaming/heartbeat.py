"""Process health in Redis: the ``status:<process>`` hash every long-running process keeps.

Contract (``core.contracts``): fields ``pid``, ``started_at``, ``heartbeat_at`` (UTC
ISO 8601) plus the process's own counters, refreshed every few seconds with a TTL so a dead
process disappears by itself. ``marketflow status`` reads them.

Usage inside an asyncio program::

    async with Heartbeat(redis_url, "ingest", lambda: {"ticks": writer.rows}):
        await main_loop()

Redis being down never stops the caller: a failed write is logged once and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.contracts import STATUS_KEY_PREFIX, STATUS_TTL_SECONDS

log = logging.getLogger(__name__)

CounterValue = int | float | str
CountersFn = Callable[[], Mapping[str, CounterValue]]
RESERVED_FIELDS = ("pid", "started_at", "heartbeat_at", "host")


def status_key(name: str) -> str:
    return f"{STATUS_KEY_PREFIX}{name}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def status_fields(
    pid: int, host: str, started_at: str, heartbeat_at: str, counters: Mapping[str, CounterValue]
) -> dict[str, str]:
    """The hash written at each beat (pure): counters cannot overwrite the contract fields."""
    fields = {k: str(v) for k, v in counters.items() if k not in RESERVED_FIELDS}
    fields.update(pid=str(pid), host=host, started_at=started_at, heartbeat_at=heartbeat_at)
    return fields


class Heartbeat:
    """Writes ``status:<name>`` every ``interval`` seconds until stopped, then removes it."""

    def __init__(
        self,
        redis_url: str,
        name: str,
        counters_fn: CountersFn | None = None,
        interval: float = 5.0,
        ttl: int = STATUS_TTL_SECONDS,
    ) -> None:
        if interval >= ttl:
            raise ValueError("heartbeat interval must be shorter than the TTL")
        self.redis_url = redis_url
        self.name = name
        self.counters_fn = counters_fn or (lambda: {})
        self.interval = interval
        self.ttl = ttl
        self.started_at = utc_now_iso()
        self.beats = 0
        self._task: asyncio.Task[None] | None = None
        self._client: aioredis.Redis | None = None
        self._failing = False

    async def beat(self) -> bool:
        """Write one heartbeat; False (logged once per outage) when Redis is unreachable."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
        try:
            counters = self.counters_fn()
        except Exception:  # a broken counter must not kill the heartbeat
            log.exception("status counters of %s failed", self.name)
            counters = {}
        fields = status_fields(
            os.getpid(), socket.gethostname(), self.started_at, utc_now_iso(), counters
        )
        key = status_key(self.name)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(key)  # counters that disappeared must not linger
                pipe.hset(key, mapping=fields)
                pipe.expire(key, self.ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            if not self._failing:
                log.warning("heartbeat %s: Redis unavailable (%s)", self.name, type(exc).__name__)
            self._failing = True
            return False
        if self._failing:
            log.info("heartbeat %s: Redis reachable again", self.name)
        self._failing = False
        self.beats += 1
        return True

    async def _loop(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.interval)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"heartbeat-{self.name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.delete(status_key(self.name))
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Heartbeat:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
