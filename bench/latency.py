"""Tick → browser latency through ingest, Redis and the dashboard server at 5 k ticks/s
(target p99 ≤ 50 ms, and no more than 2× a direct Redis subscriber's p99).

Processes, as in production: a feeder hands ticks to ingest's Redis stage
(``streaming.ingest.publish.Publisher``: leading-edge throttle per symbol, pipelined
publishes) at a steady rate, each tick stamped with its wall-clock time; ``marketflow web``
(the real server, its own process) forwards ``ticks:trades`` to a WebSocket client; in the
same run a direct Redis subscriber measures the reference (what ingest + Redis alone cost on
this machine). Receivers run in processes of their own so neither slows the other. Latency =
receive time − tick time (one clock: same host). Prints the throttle merges are not
delivered and so not measured; the share the server delivered of what Redis carried is noted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from bench import BenchContext, Comparison

DESCRIPTION = "tick → browser latency via ingest + Redis + web server vs a direct Redis subscriber"

CHANNEL = "ticks:trades"
END_SYMBOL = "__END__"
N_SYMBOLS = 50
SLICE_S = 0.002  # the feeder hands over what is due every 2 ms, like a provider's batches


def _percentiles(latencies_ms: list[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"count": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    data = sorted(latencies_ms)

    def pct(q: float) -> float:
        return data[min(len(data) - 1, round(q * (len(data) - 1)))]

    return {"count": float(len(data)), "p50": pct(0.50), "p99": pct(0.99), "max": data[-1]}


def _latency_ms(payload: dict[str, Any], now_ns: int) -> float | None:
    stamp = payload.get("time")
    if not isinstance(stamp, str):
        return None
    sent_ns = int(datetime.fromisoformat(stamp).timestamp() * 1e6) * 1000
    return (now_ns - sent_ns) / 1e6


def _ready() -> None:
    print("READY", flush=True)


def _direct_receiver(redis_url: str, deadline_s: float) -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    _ready()
    latencies: list[float] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        msg = pubsub.get_message(timeout=0.5)
        if msg is None:
            continue
        now_ns = time.time_ns()
        payload = json.loads(msg["data"])
        if payload.get("symbol") == END_SYMBOL:
            break
        lat = _latency_ms(payload, now_ns)
        if lat is not None:
            latencies.append(lat)
    pubsub.close()
    client.close()
    return _percentiles(latencies)


def _ws_receiver(url: str, deadline_s: float) -> dict[str, float]:
    from websockets.asyncio.client import connect

    async def main() -> dict[str, float]:
        latencies: list[float] = []
        async with connect(url, max_size=None, compression=None) as ws:
            _ready()
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now_ns = time.time_ns()
                for item in json.loads(frame):
                    data = item["data"]
                    if data.get("symbol") == END_SYMBOL:
                        return _percentiles(latencies)
                    lat = _latency_ms(data, now_ns)
                    if lat is not None:
                        latencies.append(lat)
        return _percentiles(latencies)

    return asyncio.run(main())


def _publisher(redis_url: str, rate: float, seconds: float) -> dict[str, float]:
    """Feed ``rate`` ticks/s for ``seconds`` to ingest's Redis publisher (trades and
    candles, as the pipeline notes them), then an end marker straight to Redis."""
    import redis

    from core.candle import Candle
    from streaming.ingest.publish import Publisher

    async def feed() -> tuple[int, float, int]:
        publisher = Publisher(redis_url)
        publisher.start()
        total = int(rate * seconds)
        minute_ns = time.time_ns() // 60_000_000_000 * 60_000_000_000
        sent = 0
        start = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            for i in range(sent, due):
                symbol = f"S{i % N_SYMBOLS:02d}"
                price = 100.0 + (i % 97) * 0.01
                publisher.note_trade(symbol, time.time_ns(), price, 1.0 + i % 5, 1 if i % 2 else -1)
                candle = Candle(i % N_SYMBOLS, minute_ns, 100.0, price + 0.05, 99.9, price, i)
                publisher.note_candle(symbol, candle)
            sent = due
            await asyncio.sleep(SLICE_S)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.2)
        await publisher.stop()
        return sent, elapsed, publisher.published

    sent, elapsed, published = asyncio.run(feed())
    client = redis.Redis.from_url(redis_url)
    end = datetime.now(UTC).isoformat()
    client.publish(CHANNEL, json.dumps({"symbol": END_SYMBOL, "time": end}))
    client.close()
    return {"count": float(sent), "rate": sent / elapsed, "published": float(published)}


def _role(*args: str) -> subprocess.Popen[str]:
    """This module in another process, one role each, so no receiver slows another."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.latency", *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _await_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "READY":
        raise RuntimeError(f"{what} did not start (exit {proc.poll()})")


def _result(proc: subprocess.Popen[str], timeout: float) -> dict[str, float]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"benchmark process failed with exit {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`marketflow web` exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("`marketflow web` did not start listening")


def _wait_web_subscribed(port: int, timeout: float = 15.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json().get("redis"):
                return
        time.sleep(0.05)
    raise RuntimeError("the web server did not subscribe to Redis")


def run(ctx: BenchContext) -> list[Comparison]:
    rate, seconds = (1000.0, 1.0) if ctx.quick else (5000.0, 10.0)
    port = _free_port()
    home = tempfile.mkdtemp(prefix="mf-bench-latency-")
    env = {
        **os.environ,
        "REDIS_URL": ctx.redis_url,
        "DATABASE_URL": ctx.database_url,
        "MARKETFLOW_HOME": home,
        "MARKETFLOW_BIND_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
    }
    env.pop("MARKETFLOW_API_TOKEN", None)
    web = subprocess.Popen(
        [sys.executable, "-m", "marketflow.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    procs: list[subprocess.Popen[str]] = []
    deadline = seconds + 30.0
    try:
        _wait_port(port, web)
        _wait_web_subscribed(port)
        url = f"ws://127.0.0.1:{port}/ws?channels={CHANNEL}"
        ws_proc = _role("ws", url, str(deadline))
        direct_proc = _role("direct", ctx.redis_url, str(deadline))
        procs += [ws_proc, direct_proc]
        _await_ready(ws_proc, "the WebSocket receiver")
        _await_ready(direct_proc, "the direct Redis receiver")
        time.sleep(0.3)  # the web server registers the WebSocket client
        pub_proc = _role("publish", ctx.redis_url, str(rate), str(seconds))
        procs.append(pub_proc)
        got = {
            "publisher": _result(pub_proc, deadline + 10),
            "web": _result(ws_proc, deadline + 10),
            "direct": _result(direct_proc, deadline + 10),
        }
    finally:
        every: list[subprocess.Popen[Any]] = [*procs, web]
        for proc in every:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    sent = got["publisher"]["count"]
    web_stats, direct = got["web"], got["direct"]
    notes = {
        "ticks/s": got["publisher"]["rate"],
        "ticks": sent,
        "trade messages via Redis": direct["count"],
        "delivered %": 100.0 * web_stats["count"] / direct["count"] if direct["count"] else 0.0,
        "max ms": web_stats["max"],
        "direct max ms": direct["max"],
    }
    return [
        Comparison(
            "tick→browser p50 via ingest + web server",
            "ms",
            web_stats["p50"],
            "direct Redis subscriber p50",
            direct["p50"],
            higher_is_better=False,
            target="the server adds little to ingest + Redis",
            notes=notes,
        ),
        Comparison(
            "tick→browser p99 via ingest + web server",
            "ms",
            web_stats["p99"],
            "direct Redis subscriber p99",
            direct["p99"],
            higher_is_better=False,
            target="p99 <= 50 ms at 5 k ticks/s, <= 2x the direct subscriber",
        ),
    ]


def _main(argv: list[str]) -> int:
    role = argv[0]
    if role == "direct":
        result = _direct_receiver(argv[1], float(argv[2]))
    elif role == "ws":
        result = _ws_receiver(argv[1], float(argv[2]))
    elif role == "publish":
        result = _publisher(argv[1], float(argv[2]), float(argv[3]))
    else:
        raise SystemExit(f"unknown role {role}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
