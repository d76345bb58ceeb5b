"""The kill switch: orders go out only while it reads an explicit ``off``.

The switch is the Redis key ``engine:kill_switch`` (``marketflow engine --kill-switch
on|off`` sets it; the embedded Redis keeps it in its append-only file). At start the engine
stores its configured ``KILL_SWITCH`` when no value is stored yet. From then on anything
but ``off`` blocks every order: ``on``, a missing key (a flushed or replaced Redis), an
unknown value, or a Redis that cannot be read. ``KILL_SWITCH=true`` in the environment
blocks whatever the key says. The engine reads it before every order (docs/trading-safety.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

KEY = "engine:kill_switch"
ON, OFF = "on", "off"


@dataclass(frozen=True)
class Reading:
    """What the switch reads and whether it blocks orders, with the reason in words."""

    state: str  # on, off, missing, unknown, unreadable
    blocks: bool
    reason: str

    def describe(self) -> str:
        verdict = f"orders BLOCKED: {self.reason}" if self.blocks else "orders allowed"
        return f"kill switch: {self.state} ({verdict})"


def judge(value: bytes | str | None, setting: bool) -> Reading:
    """The verdict for a stored value (pure)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if value is None:
        reading = Reading("missing", True, f"no value stored under {KEY}")
    elif value == OFF:
        reading = Reading(OFF, False, "")
    elif value == ON:
        reading = Reading(ON, True, "switched on")
    else:
        reading = Reading("unknown", True, f"unknown value {value[:40]!r} (only 'off' allows)")
    if setting:
        reason = "KILL_SWITCH=true in the environment"
        return Reading(reading.state, True, f"{reason}; {reading.reason}".rstrip("; "))
    return reading


def _unreadable(exc: BaseException) -> Reading:
    return Reading("unreadable", True, f"Redis unreadable ({exc.__class__.__name__})")


async def read(client: aioredis.Redis, setting: bool) -> Reading:
    try:
        value = await client.get(KEY)
    except (redis.RedisError, OSError) as exc:
        return _unreadable(exc)
    return judge(value, setting)


async def is_on(client: aioredis.Redis, setting: bool) -> bool:
    """Whether orders are blocked now (the trader asks before every order)."""
    reading = await read(client, setting)
    if reading.blocks and reading.state in ("missing", "unknown", "unreadable"):
        log.warning("%s", reading.describe())
    return reading.blocks


async def initialise(client: aioredis.Redis, setting: bool) -> bool:
    """Store the configured switch unless a value is stored; True once that is settled."""
    try:
        stored = await client.set(KEY, ON if setting else OFF, nx=True)
        reading = judge(await client.get(KEY), setting)
    except (redis.RedisError, OSError) as exc:
        log.warning("kill switch not initialised yet (%s): orders blocked", exc.__class__.__name__)
        return False
    log.info("%s%s", reading.describe(), " (stored from KILL_SWITCH)" if stored else "")
    return True


def set_switch(redis_url: str, on: bool) -> None:
    """Persist the switch (used by the CLI)."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(KEY, ON if on else OFF)
    finally:
        client.close()


def read_switch(redis_url: str, setting: bool) -> Reading:
    """The switch as the engine would read it now (used by the CLI)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        return judge(cast("bytes | None", client.get(KEY)), setting)  # the sync client
    except (redis.RedisError, OSError) as exc:
        return _unreadable(exc)
    finally:
        client.close()
