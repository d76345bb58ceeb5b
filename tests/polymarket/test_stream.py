"""The whole stream: local market channel → books → monitor → real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import psycopg
import pytest
import redis.asyncio as aioredis

from analytics.arbitrage import exit_value
from core.contracts import Channel
from marketflow.embedded.process import free_port
from streaming.polymarket.discovery import upsert_markets
from streaming.polymarket.stream import PolymarketStream, StreamConfig, load_markets
from streaming.venues.polymarket.parsing import parse_market
from tests.support.polymarket_fakes import MarketServer, capture, snapshot

REAL = capture("gamma_market")
MARKET = REAL["conditionId"]
UP, DOWN = json.loads(REAL["clobTokenIds"])
RATE = 0.0624  # crypto


def seed(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        upsert_markets(conn, [parse_market(REAL, {"crypto": RATE})])


def serve_books(server: MarketServer) -> None:
    # 0.45 + 0.50 = 0.95; fees 0.0624·(0.45·0.55 + 0.5·0.5) = 0.031 ⇒ edge ≈ 0.019
    server.books[UP] = snapshot(
        UP, [("0.44", "100")], [("0.45", "100"), ("0.60", "500")], market=MARKET
    )
    server.books[DOWN] = snapshot(
        DOWN, [("0.49", "100")], [("0.50", "40"), ("0.52", "500")], market=MARKET
    )


def change(asset: str, price: str, size: str, side: str = "SELL") -> dict:
    return {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": "1729084877448",
        "price_changes": [{"asset_id": asset, "price": price, "size": size, "side": side}],
    }


def config(url: str, **kw: object) -> StreamConfig:
    base = dict(
        ws_url=url,
        min_edge=0.005,
        stale_seconds=30.0,
        conflation_seconds=0.05,
        ping_seconds=0.5,
        fee_rates=(("crypto", RATE),),
        paper=True,
        paper_max_cost=1000.0,
    )
    base.update(kw)
    return StreamConfig(**base)  # type: ignore[arg-type]


async def until(cond: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def query(db_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def count(db_url: str, sql: str) -> int:
    return query(db_url, sql)[0][0]


def test_stream_stores_publishes_and_paper_trades_once_per_episode(db_url, redis_url):
    seed(db_url)

    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        pubsub = r.pubsub()
        await pubsub.subscribe(Channel.BINARY_PRICES, Channel.BINARY_ARBITRAGE)
        got: list[tuple[str, dict]] = []

        async def listen() -> None:
            async for msg in pubsub.listen():
                if msg["type"] == "message":
                    got.append((msg["channel"].decode(), json.loads(msg["data"])))

        listener = asyncio.create_task(listen())
        async with MarketServer() as server:
            serve_books(server)
            cfg = config(server.url)
            markets = load_markets(db_url, cfg)
            assert [(m.yes_token_id, m.no_token_id, m.fee_rate) for m in markets] == [
                (UP, DOWN, RATE)
            ]
            stream = PolymarketStream(cfg, db_url, redis_url, markets)
            stop = asyncio.Event()
            task = asyncio.create_task(stream.run(stop))

            positions = "select count(*) from binary_positions"
            await until(lambda: count(db_url, positions) == 1)
            (row,) = query(
                db_url,
                "select yes_bid, yes_ask, no_bid, no_ask, spread, edge,"
                " executable_size, arbitrage, stale, symbol_id from binary_prices",
            )
            assert row[:5] == (0.44, 0.45, 0.49, 0.50, pytest.approx(0.95))
            edge = 1 - 0.95 - RATE * (0.45 * 0.55 + 0.5 * 0.5)
            assert row[5] == pytest.approx(edge) and row[7] and not row[8]
            assert row[6] == pytest.approx(40)  # 0.45 + 0.52 + fees ≥ 1 − 0.005: stops
            assert row[9] is not None

            # more changes inside the episode: prices stored, no second paper trade
            for size in ("60", "70", "80"):
                await server.broadcast(change(DOWN, "0.50", size))
                await asyncio.sleep(0.08)
            await until(lambda: count(db_url, "select count(*) from binary_prices") >= 3)
            assert count(db_url, positions) == 1

            # the YES ask goes: episode closes
            await server.broadcast(change(UP, "0.45", "0"))
            await until(
                lambda: count(
                    db_url, "select count(*) from binary_opportunities where closed_at is not null"
                )
                == 1
            )
            # it comes back: a new episode, but no second pair: the open paper pair already
            # "took" this depth (a paper fill consumes nothing), booking it again would
            # count the same liquidity twice
            await server.broadcast(change(UP, "0.45", "100"))
            await until(lambda: count(db_url, "select count(*) from binary_opportunities") == 2)
            await until(lambda: stream.store.paper_skipped == 1)
            assert count(db_url, positions) == 1

            pos = query(
                db_url,
                "select yes_qty, no_qty, entry_cost, fees_paid, mark_value,"
                " opportunity_id, paper, status from binary_positions order by id",
            )
            assert all(p[0] == p[1] for p in pos)  # equal shares, always
            assert pos[0][0] == pytest.approx(40) and pos[0][6] and pos[0][7] == "open"
            assert pos[0][2] == pytest.approx(40 * 0.95)
            await until(
                lambda: query(db_url, "select mark_value from binary_positions order by id")[0][0]
                is not None
            )
            marks = query(db_url, "select mark_value from binary_positions order by id")
            assert marks[0][0] == pytest.approx(40 * exit_value(0.44, 0.49, RATE))

            # resolution: every pair redeems at 1
            with psycopg.connect(db_url) as conn:
                conn.execute(
                    "update binary_markets set status = 'resolved',"
                    " resolution = 'no' where market_id = %s",
                    (MARKET,),
                )
            assert await stream.store.settle() == 1
            settled = query(
                db_url,
                "select status, profit_loss, entry_cost + fees_paid, yes_qty from binary_positions",
            )
            for status, pnl, cost, qty in settled:
                assert status == "resolved" and pnl == pytest.approx(qty - cost) and pnl > 0

            stop.set()
            await task
        await until(
            lambda: any(c == Channel.BINARY_ARBITRAGE and m["action"] == "close" for c, m in got)
        )
        listener.cancel()
        await pubsub.aclose()
        await r.aclose()
        prices = [m for c, m in got if c == Channel.BINARY_PRICES]
        assert prices and prices[0]["market_id"] == MARKET
        assert prices[0]["symbol"] == "PM:btc-updown-5m-1773307200"
        arb = [m for c, m in got if c == Channel.BINARY_ARBITRAGE]
        assert [m["action"] for m in arb[:3]] == ["open", "close", "open"]
        assert arb[0]["kind"] == "pair" and arb[0]["opportunity_id"] is not None

    asyncio.run(main())


def test_rows_are_conflated_and_redis_down_never_stops_storage(db_url):
    seed(db_url)
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> None:
        async with MarketServer() as server:
            serve_books(server)
            cfg = config(server.url, conflation_seconds=0.5, paper=False)
            stream = PolymarketStream(cfg, db_url, dead_redis, load_markets(db_url, cfg))
            stop = asyncio.Event()
            task = asyncio.create_task(stream.run(stop))
            rows = "select count(*) from binary_prices"
            await until(lambda: count(db_url, rows) >= 1)
            before = count(db_url, rows)
            for i in range(50):  # a burst inside one interval
                await server.broadcast(change(DOWN, "0.50", str(41 + i)))
            await server.broadcast("{not json")  # counted, logged, persisted, skipped
            await until(lambda: stream.books.book(DOWN).asks.get(0.50) == 90)
            await asyncio.sleep(1.2)
            after = count(db_url, rows)
            assert 1 <= after - before <= 4  # one row per market per interval, not 50
            assert stream.store.publish_failures >= 1 and stream.store.db_failures == 0
            assert count(db_url, "select count(*) from binary_positions") == 0  # no --paper
            assert query(db_url, "select source, reason, count from ingest_rejects") == [
                ("polymarket", "bad_json", 1)
            ]
            stop.set()
            await task

    asyncio.run(main())


def test_cli_stream_runs_until_sigterm(db_url, redis_url, tmp_path):
    import os
    import signal
    import sys

    seed(db_url)

    async def main() -> None:
        async with MarketServer() as server:
            serve_books(server)
            env = dict(
                os.environ,
                DATABASE_URL=db_url,
                REDIS_URL=redis_url,
                POLYMARKET_WS_URL=server.url,
                POLYMARKET_CONFLATION_SECONDS="0.1",
                POLYMARKET_FEE_RATES='{"crypto": 0.0624}',
                MARKETFLOW_HOME=str(tmp_path),
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "marketflow.cli",
                "polymarket",
                "stream",
                "--paper",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await until(
                    lambda: count(db_url, "select count(*) from binary_positions") == 1, timeout=20
                )
                r = aioredis.Redis.from_url(redis_url)
                status = await r.hgetall("status:polymarket")
                await r.aclose()
                assert int(status[b"markets"]) == 1
            finally:
                proc.send_signal(signal.SIGTERM)
                out, _ = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 0, out.decode()
            assert b"streaming 1 markets" in out

    asyncio.run(main())


def test_refresh_subscribes_new_markets_and_drops_closed_ones(db_url, redis_url):
    async def main() -> None:
        async with MarketServer() as server:
            serve_books(server)
            cfg = config(server.url, refresh_seconds=0.2, paper=False)
            stream = PolymarketStream(cfg, db_url, redis_url, load_markets(db_url, cfg))
            assert stream.monitor.by_id == {}  # started before discovery stored anything
            stop = asyncio.Event()
            task = asyncio.create_task(stream.run(stop))
            seed(db_url)
            await until(lambda: count(db_url, "select count(*) from binary_prices") >= 1)
            assert sorted(stream.channel.assets) == sorted([UP, DOWN])
            with psycopg.connect(db_url) as conn:
                conn.execute("update binary_markets set status = 'closed'")
            unsubscribed = [
                {"assets_ids": ids, "operation": "unsubscribe"} for ids in ([UP, DOWN], [DOWN, UP])
            ]
            await until(lambda: not stream.channel.assets)
            # the local set empties before the message has crossed the socket: wait for it
            await until(lambda: any(m in server.sent_subscriptions() for m in unsubscribed))
            # the connection that carried them is idle now: closed, not kept open
            await until(lambda: stream.channel.shards == [])
            await until(lambda: not server.connections)
            stop.set()
            await task

    asyncio.run(main())


def test_database_outage_keeps_latest_rows_and_episodes_for_the_next_flush(db_url):
    from datetime import UTC, datetime

    from streaming.polymarket.book import BookStore
    from streaming.polymarket.monitor import Monitor
    from streaming.polymarket.store import Store

    seed(db_url)
    cfg = config("ws://unused")
    markets = load_markets(db_url, cfg)
    books = BookStore(assets=[])
    monitor = Monitor(markets, books, 0.005, 30.0, 1000.0)
    books.apply(capture("book") | {"asset_id": UP, "asks": [{"price": "0.45", "size": "10"}]}, 0.0)
    books.apply(
        capture("book") | {"asset_id": DOWN, "asks": [{"price": "0.50", "size": "10"}]}, 0.0
    )
    monitor.on_changed([UP, DOWN], 0.0)
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"

    async def main() -> None:
        store = Store(dead, None, paper=True)
        await store.flush(
            monitor.take_rows(), monitor.take_events(), monitor.by_id, datetime.now(UTC)
        )
        assert store.db_failures == 1 and store.rows_written == 0
        store.database_url = db_url  # the database is back
        await store.flush([], [], monitor.by_id, datetime.now(UTC))
        assert store.rows_written == 1
        await store.close()

    asyncio.run(main())
    assert count(db_url, "select count(*) from binary_prices where arbitrage") == 1
    assert count(db_url, "select count(*) from binary_opportunities") == 1
    assert count(db_url, "select count(*) from binary_positions") == 1


def test_tick_size_change_invalidates_until_the_stream_gets_a_fresh_snapshot(db_url):
    seed(db_url)

    async def main() -> None:
        async with MarketServer() as server:
            serve_books(server)
            cfg = config(server.url, paper=False)
            stream = PolymarketStream(cfg, db_url, None, load_markets(db_url, cfg))
            stop = asyncio.Event()
            task = asyncio.create_task(stream.run(stop))
            await until(
                lambda: stream.monitor.last_rows.get(MARKET) is not None
                and not stream.monitor.last_rows[MARKET].stale
            )
            # the venue moves to a 0.001 grid; its new book is served on request
            server.books[UP] = snapshot(UP, [("0.441", "10")], [("0.449", "10")], market=MARKET)
            await server.broadcast(capture("tick_size_change") | {"asset_id": UP})
            await until(
                lambda: {"assets_ids": [UP], "operation": "subscribe"}
                in server.sent_subscriptions()
            )
            await until(
                lambda: stream.books.book(UP).valid and stream.books.book(UP).best_ask == 0.449
            )
            assert stream.books.book(UP).tick_size == 0.001
            await until(lambda: stream.monitor.last_rows[MARKET].yes_ask == 0.449)
            assert not stream.monitor.last_rows[MARKET].stale
            stop.set()
            await task

    asyncio.run(main())


def test_database_outage_keeps_a_bounded_compact_event_backlog(db_url):
    """Found in review: during an outage every episode event was kept for the retry, so a
    market flapping around the threshold grew memory without bound. An open whose close is
    also pending is folded into the close (which stores both), and past the bound the oldest
    events are dropped and counted."""
    from datetime import UTC, datetime

    from streaming.polymarket.monitor import Episode, EpisodeEvent
    from streaming.polymarket.store import Store

    seed(db_url)
    markets = {m.market_id: m for m in load_markets(db_url, config("ws://unused"))}
    now = datetime.now(UTC)

    def episode(n: int) -> Episode:
        return Episode("pair", MARKET, now, 0.01 * n, 1.0, {"n": n}, market=markets[MARKET])

    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"

    async def main() -> None:
        store = Store(dead, None, paper=False, max_pending_events=5)
        flapping = []
        for n in range(4):  # opened and closed while the database is away
            ep = episode(n)
            ep.closed_at = now
            flapping += [EpisodeEvent("open", ep), EpisodeEvent("close", ep)]
        await store.flush([], flapping, markets, now)
        assert [e.action for e in store._pending_events] == ["close"] * 4
        await store.flush([], [EpisodeEvent("open", episode(n)) for n in range(4, 8)], markets, now)
        assert len(store._pending_events) == 5 and store.events_dropped == 3
        store.database_url = db_url  # the database is back
        await store.flush([], [], markets, now)
        assert store._pending_events == []
        await store.close()

    asyncio.run(main())
    stored = query(db_url, "select best_edge, closed_at is not null from binary_opportunities")
    # the newest closed episode (n=3) and the four later opens (n=4..7) survived
    assert sorted((round(e, 2), c) for e, c in stored) == [
        (0.03, True),
        (0.04, False),
        (0.05, False),
        (0.06, False),
        (0.07, False),
    ]


def test_paper_books_one_open_pair_per_market_across_episodes(db_url):
    """Found in review: every episode booked a paper pair, and a paper fill takes no
    liquidity, so an episode that closed and reopened on the same book (a reconnect makes
    the books stale for a moment) booked the same depth again, inflating paper profit.
    A market with an open paper position is not booked again."""
    from datetime import UTC, datetime

    from analytics.arbitrage import pair_entry
    from streaming.polymarket.monitor import Episode, EpisodeEvent
    from streaming.polymarket.store import Store

    seed(db_url)
    markets = {m.market_id: m for m in load_markets(db_url, config("ws://unused"))}
    now = datetime.now(UTC)
    fill = pair_entry([(0.45, 10.0)], [(0.50, 10.0)], RATE, 0.005, 1000.0)
    assert fill.shares == 10.0

    def episode() -> Episode:
        return Episode("pair", MARKET, now, 0.02, 10.0, {}, market=markets[MARKET], entry=fill)

    async def main() -> None:
        store = Store(db_url, None, paper=True)
        first = episode()
        await store.flush([], [EpisodeEvent("open", first)], markets, now)
        first.closed_at = now
        await store.flush([], [EpisodeEvent("close", first)], markets, now)
        await store.flush([], [EpisodeEvent("open", episode())], markets, now)
        await store.close()

    asyncio.run(main())
    assert count(db_url, "select count(*) from binary_opportunities") == 2
    assert count(db_url, "select count(*) from binary_positions where status = 'open'") == 1


def test_load_markets_counts_the_live_outcomes_of_each_event(db_url):
    """Every outcome of a negRisk event except those resolved NO counts, active or not."""
    from streaming.polymarket.discovery import upsert_markets

    event = [dict(REAL["events"][0], id="ev-9", slug="who", negRiskAugmented=False)]

    def outcome(i: int) -> dict:
        raw = dict(REAL, conditionId=f"0x{i:064x}", slug=f"who-{i}", question=f"Who {i}?")
        raw.update(clobTokenIds=json.dumps([f"{i}01", f"{i}02"]), negRisk=True, events=event)
        return raw

    with psycopg.connect(db_url) as conn:
        upsert_markets(conn, [parse_market(outcome(i), {"crypto": RATE}) for i in range(4)])
        conn.execute(
            "update binary_markets set status = 'closed' where market_id = %s", (f"0x{1:064x}",)
        )
        conn.execute(
            "update binary_markets set status = 'resolved', resolution = 'no' where market_id = %s",
            (f"0x{2:064x}",),
        )
    markets = load_markets(db_url, config("ws://unused"))
    assert sorted(m.market_id for m in markets) == [f"0x{0:064x}", f"0x{3:064x}"]
    # the closed, unresolved outcome still counts; the one resolved NO does not
    assert {m.event_outcomes for m in markets} == {3}
