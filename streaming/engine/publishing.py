"""Publishing a batch of engine messages on one Redis channel, pipelined; a Redis that
is away drops the batch (logged, and counted by the caller) instead of stopping the loop."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


async def publish(client: aioredis.Redis, name: str, messages: list[dict[str, Any]]) -> bool:
    """Publish ``messages`` on channel ``name``; False when Redis failed (all dropped)."""
    if not messages:
        return True
    try:
        async with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(name, json.dumps(message, default=str))
            await pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "publish on %s failed (%s): %d messages dropped",
            name,
            exc.__class__.__name__,
            len(messages),
        )
        return False
    return True
