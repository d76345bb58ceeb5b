"""The market-channel client against a local server speaking the real protocol."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from streaming.polymarket.book import BookStore
from streaming.venues.polymarket.data import MarketChannel, backoff_delay, shard
from tests.support.polymarket_fakes import MarketServer, capture, snapshot

BOOK_ASSET = "48331043336612883890938759509493159234755048973500640148014422747788308965732"


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def make_channel(url: str, store: BookStore, resets: list | None = None, **kw) -> MarketChannel:
    def on_reset(assets: list[str], now: float) -> None:
        store.reset(assets)
        if resets is not None:
            resets.append(list(assets))

    kw.setdefault("backoff_base", 0.05)
    kw.setdefault("backoff_max", 0.2)
    kw.setdefault("seed", 1)
    return MarketChannel(url, store.apply_text, on_reset, store.touch, **kw)


def test_shard_and_backoff_helpers():
    assert shard(["a", "b", "a", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    import random

    rng = random.Random(0)
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(12)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert max(delays[8:]) > 5  # grows towards the cap


def test_subscribe_snapshot_and_price_change():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store)
            await channel.start([BOOK_ASSET])
            await until(lambda: store.book(BOOK_ASSET) is not None and store.book(BOOK_ASSET).valid)
            book = store.book(BOOK_ASSET)
            assert (book.best_bid, book.best_ask) == (0.511, 0.514)
            assert server.sent_subscriptions()[0] == {"assets_ids": [BOOK_ASSET], "type": "market"}
            await server.broadcast(capture("price_change_legacy"))
            await until(lambda: book.asks.get(0.514) == 21574.08)
            await channel.stop()

    asyncio.run(main())


def test_shards_at_most_max_assets_and_operations():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store, max_assets=2)
            await channel.start(["a1", "a2", "a3", "a4", "a5"])
            await until(lambda: len(server.sent_subscriptions()) == 3)
            initial = server.sent_subscriptions()
            assert all(m["type"] == "market" and len(m["assets_ids"]) <= 2 for m in initial)
            assert sorted(a for m in initial for a in m["assets_ids"]) == [
                "a1",
                "a2",
                "a3",
                "a4",
                "a5",
            ]
            await until(
                lambda: all(
                    store.book(a) and store.book(a).valid for a in ["a1", "a2", "a3", "a4", "a5"]
                )
            )
            await channel.subscribe(["a6", "a7"])  # a6 fills shard 3, a7 opens shard 4
            await until(lambda: len(server.sent_subscriptions()) == 5)
            ops = server.sent_subscriptions()[3:]
            assert {"assets_ids": ["a6"], "operation": "subscribe"} in ops
            assert {"assets_ids": ["a7"], "type": "market"} in ops
            await channel.unsubscribe(["a1"])
            await until(
                lambda: {"assets_ids": ["a1"], "operation": "unsubscribe"}
                in server.sent_subscriptions()
            )
            assert "a1" not in channel.assets and len(channel.shards) == 4
            await channel.stop()

    asyncio.run(main())


def test_text_ping_heartbeat_and_pong_keeps_books_fresh():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store, ping_seconds=0.1, silence_seconds=5)
            await channel.start([BOOK_ASSET])
            await until(lambda: server.received.count("PING") >= 2)
            book = store.book(BOOK_ASSET)
            await until(lambda: book.alive_at > book.updated_at)  # PONG touched the book
            await channel.stop()

    asyncio.run(main())


def test_reconnect_resubscribes_and_new_snapshot_replaces_book():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            resets: list = []
            channel = make_channel(server.url, store, resets)
            await channel.start([BOOK_ASSET])

            def book_ready() -> bool:
                book = store.book(BOOK_ASSET)
                return book is not None and book.valid

            await until(book_ready)
            # the venue's book moves while we are disconnected
            server.books[BOOK_ASSET] = snapshot(
                BOOK_ASSET, [("0.40", "10"), ("0.45", "20")], [("0.47", "5"), ("0.60", "1")]
            )
            await server.drop_all()  # clean close
            await until(lambda: server.connects == 2)
            await until(lambda: book_ready() and store.book(BOOK_ASSET).best_ask == 0.47)
            book = store.book(BOOK_ASSET)
            assert (book.best_bid, book.best_ask) == (0.45, 0.47)
            assert len(book.bids) == 2 and len(book.asks) == 2  # replaced, not merged
            assert resets == [[BOOK_ASSET]]
            subs = [m for m in server.sent_subscriptions() if m.get("type") == "market"]
            assert len(subs) == 2 and subs[1]["assets_ids"] == [BOOK_ASSET]
            await channel.stop()

    asyncio.run(main())


def test_clean_close_loop_does_not_spin():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store, backoff_base=0.1, backoff_max=0.4)
            await channel.start([BOOK_ASSET])
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.0:  # the server closes every connection at once
                await server.drop_all()
                await asyncio.sleep(0.005)
            await channel.stop()
            assert 2 <= server.connects <= 12  # backoff, not hundreds of reconnects

    asyncio.run(main())


def test_silent_connection_is_recycled():
    async def main() -> None:
        async with MarketServer() as server:
            server.answer_pings = False  # the socket stays open but says nothing
            store = BookStore()
            channel = make_channel(server.url, store, ping_seconds=0.1, silence_seconds=0.4)
            await channel.start([BOOK_ASSET])
            await until(lambda: channel.recycled >= 1 and server.connects >= 2)
            await until(lambda: store.book(BOOK_ASSET).valid)  # fresh snapshot after recycle
            await channel.stop()

    asyncio.run(main())


def test_malformed_frames_are_counted_and_the_stream_survives():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store)
            await channel.start([BOOK_ASSET])
            await until(lambda: store.book(BOOK_ASSET) is not None and store.book(BOOK_ASSET).valid)
            for junk in [
                "{not json",
                b"\xff\xfe",
                "[1, 2]",
                "null",
                json.dumps(
                    {
                        "event_type": "price_change",
                        "asset_id": BOOK_ASSET,
                        "price": "abc",
                        "size": "1",
                        "side": "SELL",
                    }
                ),
                json.dumps({"event_type": 5}),
            ]:
                await server.broadcast(junk)
            await server.broadcast(capture("price_change_legacy"))
            book = store.book(BOOK_ASSET)
            await until(lambda: book.asks.get(0.514) == 21574.08)
            assert store.rejects.total == 7  # 2 bad JSON + 2 in the list + null + 2 bad
            assert server.connects == 1
            await channel.stop()

    asyncio.run(main())


def test_a_failing_frame_handler_does_not_end_the_shard():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            calls = []

            def flaky(frame: str | bytes, now: float) -> None:
                calls.append(frame)
                if len(calls) == 1:
                    raise RuntimeError("bug downstream")
                store.apply_text(frame, now)

            channel = MarketChannel(
                server.url,
                flaky,
                lambda a, n: store.reset(a),
                store.touch,
                backoff_base=0.05,
                backoff_max=0.1,
                seed=2,
            )
            await channel.start([BOOK_ASSET])
            await until(lambda: store.book(BOOK_ASSET) is not None and store.book(BOOK_ASSET).valid)
            assert channel.errors == 1 and server.connects == 2
            await channel.stop()

    asyncio.run(main())


def _pending_shard_tasks() -> list[str]:
    """The client's own tasks (shard runs, heartbeats, watchdogs) not yet finished."""
    return sorted(
        t.get_coro().__qualname__
        for t in asyncio.all_tasks()
        if not t.done() and t.get_coro().__qualname__.startswith("Shard.")
    )


def test_a_shard_whose_assets_are_all_unsubscribed_is_closed():
    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            channel = make_channel(server.url, store, max_assets=2)
            await channel.start(["a1", "a2", "a3"])
            await until(lambda: len(server.connections) == 2)
            await until(lambda: all(store.book(a) and store.book(a).valid for a in ["a1", "a3"]))
            first, second = channel.shards
            await channel.unsubscribe(["a3"])  # the second shard's only asset
            assert channel.shards == [first] and channel.assets == ["a1", "a2"]
            assert second._task is not None and second._task.done()
            await until(lambda: len(server.connections) == 1)  # its socket was closed
            assert server.connects == 2  # ... and not reopened
            # a new asset opens a new shard with its own, distinct id
            await channel.subscribe(["a4"])
            await until(lambda: len(server.connections) == 2)
            assert [s.index for s in channel.shards] == [0, 2]
            assert channel.assets == ["a1", "a2", "a4"]
            await until(lambda: store.book("a4") is not None and store.book("a4").valid)
            await channel.stop()
            assert _pending_shard_tasks() == []

    asyncio.run(main())


def test_heartbeat_tasks_are_awaited_when_a_connection_ends():
    """Found in review: the ping and watchdog tasks were cancelled but not awaited, so they
    outlived their connection (still pending when the shard moved on to reconnect)."""

    async def main() -> None:
        async with MarketServer() as server:
            store = BookStore()
            at_reset: list[list[str]] = []

            def on_reset(assets: list[str], now: float) -> None:
                store.reset(assets)
                at_reset.append(_pending_shard_tasks())

            channel = MarketChannel(
                server.url,
                store.apply_text,
                on_reset,
                store.touch,
                ping_seconds=0.05,
                backoff_base=0.05,
                backoff_max=0.1,
                seed=3,
            )
            await channel.start([BOOK_ASSET])
            await until(lambda: store.book(BOOK_ASSET) is not None and store.book(BOOK_ASSET).valid)
            await server.drop_all()  # the server ends the connection
            await until(lambda: server.connects == 2 and store.book(BOOK_ASSET).valid)
            await channel.stop()
            assert _pending_shard_tasks() == []
            # when each connection was over, only the shard's own loop was still running
            assert at_reset == [["Shard._run"], ["Shard._run"]]

    asyncio.run(main())
