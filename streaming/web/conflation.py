"""Per-client outbox that conflates state updates, so a slow browser never backs up Redis.

State channels (candles, trades, market state, binary prices) keep only the latest message
per key: a browser that fell behind gets the newest candle of each symbol, not a backlog.
Candles are keyed per bar minute as well, so a stalled client still receives each bar's final
values rather than losing the close of the minute it missed. Event channels (signals, alerts,
arbitrage) are not conflated (every event matters) but bounded: past ``max_events`` pending
the oldest are dropped and counted. Pure data structure, no I/O.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.contracts import Channel

EVENT_CHANNELS = frozenset({Channel.SIGNALS, Channel.ALERTS, Channel.BINARY_ARBITRAGE})
ConflationKey = tuple[str, ...]


class BadMessage(ValueError):
    """A Redis message that is not a JSON object; counted and skipped by the web server."""


def parse_payload(raw: bytes | str) -> tuple[str, dict[str, Any]]:
    """Decode a Redis payload into (text, object); raise BadMessage for anything else.

    orjson is strict JSON: it refuses NaN / Infinity, which Python's json accepts and a
    browser's JSON.parse rejects along with the whole frame the message travels in (and
    every other update in it), and it validates UTF-8."""
    try:
        obj = orjson.loads(raw)
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadMessage(f"not a JSON object: {type(obj).__name__}")
    return text, obj


def message_symbol(payload: Mapping[str, Any]) -> str:
    """The instrument a message is about: a symbol, or a Polymarket market id."""
    for name in ("symbol", "market_id", "market", "event_id"):
        value = payload.get(name)
        if value is not None:
            return str(value)
    return ""


def conflation_key(channel: str, payload: Mapping[str, Any]) -> ConflationKey | None:
    """Key under which a newer message replaces an older one; None: never conflate."""
    if channel in EVENT_CHANNELS:
        return None
    symbol = message_symbol(payload)
    if channel == Channel.CANDLES:
        return (channel, symbol, str(payload.get("time", "")))
    return (channel, symbol)


def frame_item(channel: str, text: str) -> str:
    """One element of a WebSocket frame; ``text`` is already validated JSON."""
    return f'{{"channel":{json.dumps(channel)},"data":{text}}}'


@dataclass
class Outbox:
    """Pending messages of one client, in arrival order of their keys."""

    max_events: int = 512
    max_pending: int = 8192
    pending: OrderedDict[ConflationKey, tuple[str, str]] = field(default_factory=OrderedDict)
    offered: int = 0
    conflated: int = 0  # replaced by a newer message before being sent
    dropped: int = 0  # evicted by a bound
    _events: deque[ConflationKey] = field(default_factory=deque)
    _seq: int = 0

    def offer(self, channel: str, key: ConflationKey | None, text: str) -> None:
        self.offered += 1
        if key is None:
            self._seq += 1
            key = ("#event", str(self._seq))
            self._events.append(key)
            if len(self._events) > self.max_events:
                old = self._events.popleft()
                if self.pending.pop(old, None) is not None:
                    self.dropped += 1
        elif key in self.pending:
            self.conflated += 1
        self.pending[key] = (channel, text)  # an existing key keeps its place in the order
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.dropped += 1

    def drain(self, limit: int | None = None) -> list[tuple[str, str]]:
        """Take up to ``limit`` pending messages (all by default), oldest first."""
        out: list[tuple[str, str]] = []
        while self.pending and (limit is None or len(out) < limit):
            _key, item = self.pending.popitem(last=False)
            out.append(item)
        if not self.pending:
            self._events.clear()
        return out

    def __len__(self) -> int:
        return len(self.pending)
