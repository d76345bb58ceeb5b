"""A Redis subscriber for tests: subscribes before the code under test publishes and
collects the JSON messages per channel."""

from __future__ import annotations

import json

import redis


class Listener:
    """Subscribes before the engine publishes and collects JSON messages per channel."""

    def __init__(self, url: str, *channels: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(*channels)
        self.pubsub.get_message(timeout=1)  # subscription confirmations
        for _ in channels[1:]:
            self.pubsub.get_message(timeout=1)

    def drain(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        while (m := self.pubsub.get_message(timeout=0.2)) is not None:
            if m["type"] == "message":
                out.setdefault(m["channel"].decode(), []).append(json.loads(m["data"]))
        return out

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()
