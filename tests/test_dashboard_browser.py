"""The dashboard in a real headless Chromium: history from PostgreSQL, live candle via Redis.

Driven over the Chrome DevTools Protocol with the websockets client we already depend on.
Chromium comes from Debian (`make install` as root runs
`apt-get install -y chromium chromium-driver`); without it this test fails, it never skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from core.contracts import Channel
from streaming.relay import Relay

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    f"headless Chromium not found at {CHROMIUM}: run the install step "
    "(`make install` as root, or `apt-get update && apt-get install -y chromium chromium-driver`)"
)


class DevTools:
    """Minimal CDP client: send a command, wait for its result."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, predicate: Any, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if predicate(value):
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting on {expression!r}; last value {value!r}")


def start_chromium(profile: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("chromium did not open its DevTools port")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Chromium's renderer and GPU helpers share its process group: end them all."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def test_dashboard_shows_history_and_live_candle(redis_url: str, db_url: str) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(INSTALL_HINT)
    with psycopg.connect(db_url) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        conn.execute(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count,"
            " vwap) values (%s, %s, 180.0, 181.0, 179.5, 180.75, 1200, 40, 180.4)",
            (sid, datetime(2026, 11, 23, 14, 30, tzinfo=UTC)),
        )
    # 14:31 UTC on 23 Nov is 09:31 in New York (EST): the page must show market time
    live = {
        "symbol": "AAPL",
        "time": "2026-11-23T14:31:00+00:00",
        "open": 180.75,
        "high": 187.5,
        "low": 180.5,
        "close": 187.25,
        "volume": 900,
    }

    async def scenario(profile: Path) -> tuple[str, str]:
        pub = aioredis.Redis.from_url(redis_url)
        relay = Relay(redis_url, db_url, host="127.0.0.1", port=0)
        await relay.start()
        chromium, cdp_port = start_chromium(profile)
        try:
            await asyncio.wait_for(relay.subscribed.wait(), 10)
            async with httpx.AsyncClient() as http:
                targets = (await http.get(f"http://127.0.0.1:{cdp_port}/json/list")).json()
            page = next(t for t in targets if t["type"] == "page")
            async with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
                tools = DevTools(ws)
                await tools.call("Page.navigate", url=f"http://127.0.0.1:{relay.port}/?symbol=AAPL")
                await tools.wait_for(
                    "document.body && document.body.dataset.ws", lambda v: v == "open"
                )
                history = await tools.wait_for(
                    "document.getElementById('last-candle').textContent",
                    lambda v: isinstance(v, str) and "180.75" in v,
                )
                await pub.publish(Channel.CANDLES, json.dumps(live))
                shown = await tools.wait_for(
                    "document.getElementById('last-candle').textContent",
                    lambda v: isinstance(v, str) and "187.25" in v,
                )
                row = await tools.evaluate(
                    "document.querySelector('#symbols tr[data-symbol=AAPL]').textContent"
                )
                assert "187.25" in row and "09:31" in row
                shot = await tools.call("Page.captureScreenshot", format="png")
                assert len(shot.get("data", "")) > 1000  # the canvas chart rendered something
        finally:
            stop_group(chromium)
            await relay.stop()
            await pub.aclose()
        return history, shown

    with tempfile.TemporaryDirectory(prefix="mf-chromium-", ignore_cleanup_errors=True) as profile:
        history, shown = asyncio.run(scenario(Path(profile)))
    assert "09:30" in history and "EST" in history  # history from candles_1m, New York time
    assert "AAPL" in shown and "09:31" in shown and "EST" in shown
    assert "O 180.75" in shown and "H 187.50" in shown and "C 187.25" in shown
