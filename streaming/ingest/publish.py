"""Best-effort Redis publishing of live candles and trades (docs/architecture.md).

* ``ticks:candles`` → ``{symbol, time, open, high, low, close, volume}`` on candle updates,
  throttled: at most one message per (symbol, minute) per interval, always the latest state
  (a finalised minute and the next running one are separate keys, so neither is lost).
* ``ticks:trades`` → the latest print per symbol per interval (conflated), with the volume
  and count of the prints it stands for.

Leading-edge throttle: after a quiet interval the next update goes out at once, so latency
stays low at moderate rates while a burst costs at most one message per key per interval.

Redis being down never blocks ingest: ``note_*`` only touch dicts; the sender task
publishes with short timeouts, counts what it could not send as ``dropped`` and reconnects
with backoff. Nothing here raises into the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.candle import Candle
from core.contracts import Channel
from core.timestamps import NS

log = logging.getLogger(__name__)


def iso(ts_ns: int) -> str:
    """UTC ISO 8601 with +00:00, the time format of the ``ticks:candles`` contract."""
    whole = datetime.fromtimestamp(ts_ns // NS, tz=UTC)
    return whole.replace(microsecond=(ts_ns % NS) // 1000).isoformat()


def candle_payload(symbol: str, c: Candle) -> dict[str, object]:
    return {
        "symbol": symbol,
        "time": iso(c.minute_ns),
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "volume": c.volume,
    }


class Publisher:
    def __init__(self, redis_url: str | None, interval_s: float = 0.02) -> None:
        self.redis_url = redis_url
        self.interval_s = interval_s
        self._candles: dict[tuple[str, int], dict[str, object]] = {}
        self._trades: dict[str, dict[str, object]] = {}
        self._dirty = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_until = 0.0
        self._backoff = 0.5
        self.published = 0
        self.dropped = 0
        self.failures = 0
        self.connected = False
        # receipt time (monotonic ns) of the newest print in each published trade message;
        # the latency benchmark reads it
        self.on_publish_trade: list[int] | None = None

    # --- called by the pipeline (never blocks, never raises) ------------------
    def note_candle(self, symbol: str, candle: Candle) -> None:
        if self.redis_url is None:
            return
        self._candles[(symbol, candle.minute_ns)] = candle_payload(symbol, candle)
        self._dirty.set()

    def note_trade(
        self, symbol: str, ts_ns: int, price: float, size: float, side: int | None, count: int = 1
    ) -> None:
        if self.redis_url is None:
            return
        prev = self._trades.get(symbol)
        # prev holds the numbers this method stored; its dict is typed for orjson
        volume = size + (float(prev["volume"]) if prev else 0.0)  # type: ignore[arg-type]
        n = count + (int(prev["count"]) if prev else 0)  # type: ignore[call-overload]
        self._trades[symbol] = {
            "symbol": symbol,
            "time": iso(ts_ns),
            "price": price,
            "size": size,
            "side": side,
            "volume": volume,
            "count": n,
            "_recv": time.monotonic_ns(),
        }
        self._dirty.set()

    # --- the sender task -------------------------------------------------------
    def start(self) -> None:
        if self.redis_url is not None and self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="ingest-publisher")

    async def stop(self) -> None:
        """Send what is pending and end the sender task.

        The task is asked to finish (a flag and a wake-up) rather than cancelled: a cancel
        that lands inside a Redis call can be turned into a timeout by the client's own
        timeout handling and lost, leaving a task that waits forever for work.
        """
        if self._task is not None:
            self._closing = True
            self._dirty.set()
            await asyncio.wait({self._task}, timeout=5.0)
            if not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
            await self.flush()
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._client.aclose(), timeout=2.0)
            self._client = None

    async def _run(self) -> None:
        while not self._closing:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()
            if not self._closing:
                await asyncio.sleep(self.interval_s)

    async def flush(self) -> None:
        if not self._candles and not self._trades:
            return
        candles, self._candles = self._candles, {}
        trades, self._trades = self._trades, {}
        messages = [(Channel.CANDLES.value, orjson.dumps(p)) for p in candles.values()]
        recv: list[int] = []  # monotonic ns each trade was received
        for p in trades.values():
            recv.append(cast(int, p.pop("_recv")))
            messages.append((Channel.TRADES.value, orjson.dumps(p)))
        if time.monotonic() < self._down_until:
            self.dropped += len(messages)
            return
        try:
            client = self._ensure_client()
            async with client.pipeline(transaction=False) as pipe:
                for channel, body in messages:
                    pipe.publish(channel, body)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self.dropped += len(messages)
            self.failures += 1
            if self.connected or self.failures == 1:
                log.warning(
                    "Redis publish failed (%s); dropping live updates until it is back",
                    type(exc).__name__,
                )
            self.connected = False
            self._down_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 10.0)
            await self._reset_client()
            return
        if not self.connected:
            log.info("Redis publishing (re)connected")
        self.connected = True
        self._backoff = 0.5
        self.published += len(messages)
        if self.on_publish_trade is not None:
            self.on_publish_trade.extend(recv)

    def _ensure_client(self) -> aioredis.Redis:
        if self._client is None:
            assert self.redis_url is not None
            self._client = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
        return self._client

    async def _reset_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self._client.aclose()
            self._client = None
