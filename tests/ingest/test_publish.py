"""Publisher: payload contract, conflation, and a stop that never hangs on a bad Redis."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import orjson
import pytest
import redis

from core.candle import Candle
from core.timestamps import NS
from streaming.ingest.publish import Publisher, candle_payload, iso

pytestmark = pytest.mark.timeout(60)
T0 = 1_764_000_000 * NS  # a whole minute


def test_candle_payload_keeps_the_original_keys() -> None:
    c = Candle(1, T0, 10.0, 12.0, 9.0, 11.0, 175.0, 3, 1800.0, T0 + NS, T0 + 59 * NS)
    p = candle_payload("AAPL", c)
    assert p == {"symbol": "AAPL", "time": "2025-11-24T16:00:00+00:00", "open": 10.0,
                 "high": 12.0, "low": 9.0, "close": 11.0, "volume": 175.0}  # fmt: skip
    assert iso(T0 + 138_000_000) == "2025-11-24T16:00:00.138000+00:00"


def test_conflation_and_throttle(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    sub = client.pubsub()
    sub.subscribe("ticks:trades", "ticks:candles")
    while sub.get_message(timeout=1.0) is not None:
        pass

    async def scenario() -> Publisher:
        pub = Publisher(redis_url, interval_s=0.2)
        pub.start()
        for i in range(100):  # a burst: one message per symbol and interval, the latest
            pub.note_trade("AAPL", T0 + i * 1000, 100.0 + i, 1.0, 1)
            pub.note_trade("MSFT", T0 + i * 1000, 300.0, 2.0, None)
        c = Candle(1, T0, 10.0, 12.0, 9.0, 11.0, 175.0, 3, 0.0, T0, T0)
        pub.note_candle("AAPL", c)
        pub.note_candle("AAPL", Candle(1, T0, 10.0, 13.0, 9.0, 12.0, 180.0, 4, 0.0, T0, T0))
        await asyncio.sleep(0.5)
        await pub.stop()
        return pub

    pub = asyncio.run(scenario())
    got: list[tuple[str, dict]] = []
    while (msg := sub.get_message(timeout=0.5)) is not None:
        if msg["type"] == "message":
            got.append((msg["channel"].decode(), orjson.loads(msg["data"])))
    sub.close()
    client.close()
    trades = [p for ch, p in got if ch == "ticks:trades"]
    candles = [p for ch, p in got if ch == "ticks:candles"]
    assert len(trades) == 2 and pub.published == 3 and pub.dropped == 0
    aapl = next(t for t in trades if t["symbol"] == "AAPL")
    assert aapl["price"] == 199.0 and aapl["count"] == 100 and aapl["volume"] == 100.0
    assert candles == [{"symbol": "AAPL", "time": "2025-11-24T16:00:00+00:00", "open": 10.0,
                        "high": 13.0, "low": 9.0, "close": 12.0, "volume": 180.0}]  # fmt: skip


def test_stop_returns_with_a_redis_that_never_answers() -> None:
    """A server that accepts connections and then stays silent (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"

    async def scenario() -> Publisher:
        pub = Publisher(url, interval_s=0.01)
        pub.start()
        pub.note_trade("AAPL", T0, 1.0, 1.0, None)
        await asyncio.sleep(0.3)  # the sender is now waiting for an answer
        pub.note_trade("AAPL", T0 + NS, 1.0, 1.0, None)
        await pub.stop()
        return pub

    t0 = time.monotonic()
    try:
        pub = asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        server.close()
    assert time.monotonic() - t0 < 15
    assert pub.published == 0 and pub.dropped >= 1
