"""The kill switch: blocks every new order while on (DESIGN §8).

On when ``KILL_SWITCH=true`` or when the Redis key ``engine:kill_switch`` says ``on``
(``marketflow engine --kill-switch on|off`` sets it; the embedded Redis keeps it in its
append-only file across restarts). The engine reads it before every order. When Redis
cannot be read the switch counts as on: an unknown switch never lets an order through.
"""

from __future__ import annotations

import logging

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

KEY = "engine:kill_switch"
ON, OFF = "on", "off"


async def is_on(client: aioredis.Redis, setting: bool) -> bool:
    if setting:
        return True
    try:
        value = await client.get(KEY)
    except (redis.RedisError, OSError) as exc:
        log.warning("kill switch unreadable (%s): treating it as on", exc.__class__.__name__)
        return True
    if isinstance(value, bytes):
        value = value.decode()
    return value == ON


def set_switch(redis_url: str, on: bool) -> None:
    """Persist the switch (used by the CLI)."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(KEY, ON if on else OFF)
    finally:
        client.close()


def read_switch(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        value = client.get(KEY)
    finally:
        client.close()
    return value.decode() if isinstance(value, bytes) else OFF
