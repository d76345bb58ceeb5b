"""WebServer: Redis → WebSocket delivery, conflation, slow clients, token, history API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.contracts import Channel
from storage.db import sqlalchemy_url
from streaming.web import WebConfigError, WebServer
from streaming.web.conflation import Outbox, conflation_key
from streaming.web.queries import Queries

# --- pure: the outbox -----------------------------------------------------------------------


def test_outbox_keeps_latest_per_key_in_first_arrival_order() -> None:
    box = Outbox()
    for i in range(10):
        for sym in ("AAPL", "MSFT"):
            payload = {"symbol": sym, "state": f"S{i}"}
            box.offer(
                Channel.MARKET_STATE, conflation_key(Channel.MARKET_STATE, payload), f"{sym}{i}"
            )
    assert box.drain() == [(Channel.MARKET_STATE, "AAPL9"), (Channel.MARKET_STATE, "MSFT9")]
    assert box.conflated == 18 and box.dropped == 0 and len(box) == 0


def test_outbox_candles_conflate_per_bar_and_events_never_conflate() -> None:
    box = Outbox(max_events=3)
    for minute in ("09:30", "09:31"):
        for close in (1, 2, 3):
            c = {"symbol": "AAPL", "time": minute, "close": close}
            box.offer(Channel.CANDLES, conflation_key(Channel.CANDLES, c), f"{minute}:{close}")
    for n in range(5):
        box.offer(Channel.SIGNALS, conflation_key(Channel.SIGNALS, {"symbol": "AAPL"}), f"sig{n}")
    out = [text for _, text in box.drain()]
    # the last value of each bar survives; signals are bounded, oldest dropped and counted
    assert out == ["09:30:3", "09:31:3", "sig2", "sig3", "sig4"]
    assert box.dropped == 2


def test_outbox_bounded_and_partial_drain() -> None:
    box = Outbox(max_pending=100)
    for i in range(250):
        box.offer(Channel.MARKET_STATE, (Channel.MARKET_STATE, f"S{i}"), str(i))
    assert len(box) == 100 and box.dropped == 150
    first = box.drain(limit=40)
    assert [t for _, t in first] == [str(i) for i in range(150, 190)]
    assert len(box) == 60


def test_non_standard_json_numbers_are_bad_messages() -> None:
    """Found in review: Python's json accepts NaN/Infinity, browsers' JSON.parse does not,
    so one such message made the browser drop the whole frame it travelled in (up to 500
    updates of other symbols). It is counted and skipped at the server instead."""
    from streaming.web.conflation import BadMessage, parse_payload

    for raw in ('{"symbol": "AAPL", "close": NaN}', b'{"symbol": "AAPL", "vwap": -Infinity}'):
        with pytest.raises(BadMessage):
            parse_payload(raw)
    assert parse_payload('{"symbol": "AAPL", "close": 1.5}')[1]["close"] == 1.5


def test_non_loopback_without_token_refuses_to_start() -> None:
    with pytest.raises(WebConfigError, match="MARKETFLOW_API_TOKEN"):
        WebServer("redis://127.0.0.1:1/0", None, host="0.0.0.0", port=0)
    WebServer("redis://127.0.0.1:1/0", None, host="0.0.0.0", port=0, token="t0k")  # fine


# --- with real Redis ------------------------------------------------------------------------


@asynccontextmanager
async def running_server(
    redis_url: str, db_url: str | None = None, **kw: object
) -> AsyncIterator[WebServer]:
    server = WebServer(redis_url, db_url, host="127.0.0.1", port=0, **kw)  # type: ignore[arg-type]
    await server.start()
    try:
        await asyncio.wait_for(server.subscribed.wait(), 10)
        yield server
    finally:
        await server.stop()


async def wait_clients(server: WebServer, n: int) -> None:
    for _ in range(200):
        if len(server.clients) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("clients did not register")


def test_redis_publish_reaches_websocket_client(redis_url: str) -> None:
    async def scenario() -> None:
        pub = aioredis.Redis.from_url(redis_url)
        async with running_server(redis_url) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await wait_clients(server, 1)
                candle = {
                    "symbol": "AAPL",
                    "time": "2026-11-23T14:31:00+00:00",
                    "open": 1.0,
                    "high": 2.0,
                    "low": 0.5,
                    "close": 1.5,
                    "volume": 300,
                }
                await pub.publish(Channel.CANDLES, "{not json")
                await pub.publish(Channel.CANDLES, json.dumps(candle))
                await pub.publish(Channel.SIGNALS, json.dumps({"symbol": "AAPL", "type": "BUY"}))
                got: list[dict[str, object]] = []
                while len(got) < 2:
                    got += json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert got[0] == {"channel": "ticks:candles", "data": candle}
            assert got[1]["channel"] == "signals"
            assert server.stats.bad_messages == 1  # counted and skipped, delivery went on
        await pub.aclose()

    asyncio.run(scenario())


def test_a_failing_dispatch_never_ends_the_redis_reader(redis_url: str) -> None:
    """Found in review: only Redis/OS errors were caught around the subscription, so any
    other exception ended the reader task for good and the dashboard went silent."""

    async def scenario() -> None:
        pub = aioredis.Redis.from_url(redis_url)
        async with running_server(redis_url) as server:
            real = server.hub.dispatch
            calls = {"n": 0}

            def flaky(channel: str, raw: bytes | str) -> None:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise RuntimeError("a bug in one message's handling")
                real(channel, raw)

            server.hub.dispatch = flaky  # type: ignore[method-assign]
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await wait_clients(server, 1)
                await pub.publish(Channel.SIGNALS, json.dumps({"symbol": "AAPL", "n": 1}))
                got: list[dict[str, object]] = []
                for _ in range(100):  # resubscribed after the failure: later ones arrive
                    await pub.publish(Channel.SIGNALS, json.dumps({"symbol": "AAPL", "n": 2}))
                    with contextlib.suppress(TimeoutError):
                        got += json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                    if got:
                        break
            assert got and got[0]["data"] == {"symbol": "AAPL", "n": 2}
            assert server.hub.reader is not None and not server.hub.reader.done()
        await pub.aclose()

    asyncio.run(scenario())


def test_a_port_in_use_leaves_no_reader_task_behind(redis_url: str) -> None:
    """Found in review: the Redis reader task was started before the listener, and a
    listener that failed (port taken) left it running, never awaited or cancelled."""
    import socket

    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            server = WebServer(redis_url, None, host="127.0.0.1", port=taken.getsockname()[1])
            with pytest.raises(OSError):
                await server.start()
            assert server.hub.reader is None or server.hub.reader.done()

    asyncio.run(scenario())


def test_channel_and_symbol_filters(redis_url: str) -> None:
    async def scenario() -> None:
        pub = aioredis.Redis.from_url(redis_url)
        async with running_server(redis_url) as server:
            url = f"ws://127.0.0.1:{server.port}/ws?channels=market_state&symbols=MSFT"
            async with connect(url) as ws:
                await wait_clients(server, 1)
                await pub.publish(Channel.CANDLES, json.dumps({"symbol": "MSFT", "close": 1}))
                await pub.publish(
                    Channel.MARKET_STATE, json.dumps({"symbol": "AAPL", "state": "X"})
                )
                await pub.publish(
                    Channel.MARKET_STATE, json.dumps({"symbol": "MSFT", "state": "Y"})
                )
                items = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert items == [{"channel": "market_state", "data": {"symbol": "MSFT", "state": "Y"}}]
        await pub.aclose()

    asyncio.run(scenario())


def test_stalled_client_neither_blocks_others_nor_redis(redis_url: str) -> None:
    """A client that stops reading: the other client gets everything, the server keeps
    draining Redis, and the stalled client's outbox holds only the latest per symbol."""
    symbols = [f"S{i}" for i in range(5)]
    n_rounds = 3000
    pad = "x" * 600  # fill the stalled socket's buffers quickly

    async def scenario() -> None:
        pub = aioredis.Redis.from_url(redis_url)
        async with running_server(redis_url) as server:
            # max_queue=1: the client library stops reading the socket once one frame waits,
            # so TCP back-pressure reaches the server exactly as with a frozen browser tab.
            stalled = await connect(f"ws://127.0.0.1:{server.port}/ws", max_queue=1)
            async with connect(f"ws://127.0.0.1:{server.port}/ws", max_size=None) as live:
                await wait_clients(server, 2)
                latest: dict[str, int] = {}

                async def read_live() -> None:
                    while any(latest.get(s) != n_rounds - 1 for s in symbols):
                        for item in json.loads(await live.recv()):
                            data = item["data"]
                            latest[data["symbol"]] = data["n"]

                reader = asyncio.create_task(read_live())
                for n in range(n_rounds):
                    pipe = pub.pipeline(transaction=False)
                    for s in symbols:
                        pipe.publish(
                            Channel.MARKET_STATE, json.dumps({"symbol": s, "n": n, "p": pad})
                        )
                    await pipe.execute()
                await asyncio.wait_for(reader, 30)
                total = n_rounds * len(symbols)
                for _ in range(500):
                    if server.stats.received >= total:
                        break
                    await asyncio.sleep(0.01)
                assert server.stats.received == total  # Redis drained in full

                port = stalled.local_address[1]
                stalled_client = next(c for c in server.clients if c.peer[1] == port)
                # back-pressure reached it: it conflated, and holds at most one per symbol
                assert stalled_client.outbox.conflated > 0
                assert len(stalled_client.outbox) <= len(symbols)
                assert stalled_client.frames < n_rounds
                # now the stalled client reads: it ends with the latest value of every symbol
                seen: dict[str, int] = {}
                while any(seen.get(s) != n_rounds - 1 for s in symbols):
                    for item in json.loads(await asyncio.wait_for(stalled.recv(), 10)):
                        seen[item["data"]["symbol"]] = item["data"]["n"]
                assert set(seen) == set(symbols)
            await stalled.close()
        await pub.aclose()

    asyncio.run(scenario())


def test_token_required_for_ws_and_api_when_configured(redis_url: str) -> None:
    async def scenario() -> None:
        async with running_server(redis_url, token="s3cret") as server:
            base = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{base}/api/health")).status_code == 200
                assert (await http.get(f"{base}/api/symbols")).status_code == 401
                page = await http.get(f"{base}/")
                assert page.status_code == 200 and "marketflow" in page.text
                assert "http" not in page.headers["content-security-policy"]
                assert (await http.get(f"{base}/static/../server.py")).status_code == 404
            with pytest.raises(InvalidStatus):
                async with connect(f"ws://127.0.0.1:{server.port}/ws"):
                    pass
            with pytest.raises(InvalidStatus):  # another site's page in the user's browser
                async with connect(
                    f"ws://127.0.0.1:{server.port}/ws?token=s3cret", origin="http://evil.example"
                ):
                    pass
            same = f"http://127.0.0.1:{server.port}"
            async with connect(f"ws://127.0.0.1:{server.port}/ws?token=s3cret", origin=same) as ws:
                await wait_clients(server, 1)
                assert ws.protocol.state.name == "OPEN"

    asyncio.run(scenario())


def test_history_endpoint_returns_recent_candles_oldest_first(redis_url: str, db_url: str) -> None:
    start = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        for i in range(5):
            conn.execute(
                "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, "
                "trade_count, vwap) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    sid,
                    start + timedelta(minutes=i),
                    100 + i,
                    101 + i,
                    99 + i,
                    100.5 + i,
                    10,
                    3,
                    100.2 + i,
                ),
            )

    async def scenario() -> dict[str, object]:
        async with running_server(redis_url, db_url) as server, httpx.AsyncClient() as http:
            base = f"http://127.0.0.1:{server.port}"
            res = await http.get(f"{base}/api/candles", params={"symbol": "aapl", "limit": 3})
            assert res.status_code == 200
            syms = (await http.get(f"{base}/api/symbols")).json()["symbols"]
            assert any(s["symbol"] == "VOD.L" and s["timezone"] == "Europe/London" for s in syms)
            return res.json()

    data = asyncio.run(scenario())
    assert data["timezone"] == "America/New_York"
    # the driver-qualified URL the rest of marketflow accepts serves the same history
    queries = Queries(sqlalchemy_url(db_url))
    assert asyncio.run(queries.candles("AAPL", 3)) == data
    candles = data["candles"]
    assert [c["close"] for c in candles] == [102.5, 103.5, 104.5]
    assert candles[0]["time"].startswith("2026-11-23T14:32:00")


def test_history_endpoint_reports_database_down(redis_url: str) -> None:
    async def scenario() -> None:
        async with running_server(redis_url, "postgresql://postgres@127.0.0.1:1/none") as server:
            async with httpx.AsyncClient() as http:
                res = await http.get(f"http://127.0.0.1:{server.port}/api/candles?symbol=AAPL")
            assert res.status_code == 503 and "database unavailable" in res.json()["error"]

    asyncio.run(scenario())


def test_latency_benchmark_smoke(redis_url: str) -> None:
    """`bench/latency.py` in quick mode: real server process, measurements beside the reference."""
    import math

    from bench import BenchContext
    from bench.latency import run

    results = run(BenchContext("postgresql://postgres@127.0.0.1:1/unused", redis_url, quick=True))
    assert [c.reference_name for c in results] == [
        "direct Redis subscriber p50",
        "direct Redis subscriber p99",
    ]
    for c in results:
        assert math.isfinite(c.value) and c.value > 0 and math.isfinite(c.reference_value)
    assert results[0].notes["delivered %"] > 50


def test_accepted_connections_have_nagle_off() -> None:
    """Found by the latency benchmark: the listening socket was made with proto 0, so
    asyncio never set TCP_NODELAY on accepted connections and small frames waited for the
    client's delayed ACK (p99 36 ms instead of 19 ms)."""
    import socket

    from streaming.web.server import _bind

    async def scenario() -> int:
        sock = _bind("127.0.0.1", 0)
        accepted: asyncio.Queue[int] = asyncio.Queue()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            await accepted.put(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_client, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted.get(), 5)
            writer.close()
        finally:
            server.close()
            await server.wait_closed()
        return nodelay

    assert asyncio.run(scenario()) != 0
