"""Alert webhooks against a real HTTP server on loopback: the JSON, Slack and Discord
bodies, retries with backoff on 5xx and connection errors, Retry-After on 429, no retry on
another 4xx, the per-webhook rate limit, a full queue that drops and counts without ever
blocking, the engine heartbeat's counters, settings validation and URLs kept out of logs."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from core.webhooks import WebhookTarget
from streaming.engine.loop import Engine
from streaming.engine.webhook_format import alert_text, webhook_body
from streaming.engine.webhooks import WebhookDispatcher, retry_after
from tests.support.engine_rows import settings
from tests.support.webhook_server import WebhookServer

ALERT = {
    "type": "stacked_imbalance",
    "symbol": "AAPL",
    "time": "2026-11-23T15:00:00+00:00",
    "side": "BUY",
    "rows": 4,
    "bar": "2026-11-23T14:58:00+00:00",
}


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    s = WebhookServer()
    yield s
    s.close()


def deliver(d: WebhookDispatcher, alerts: list[dict], timeout: float = 10.0) -> None:
    async def go() -> None:
        try:
            d.submit(alerts)
            assert await d.drain(timeout), "the webhooks did not finish in time"
        finally:
            await d.close()

    asyncio.run(go())


def test_json_slack_and_discord_bodies(server: WebhookServer) -> None:
    d = WebhookDispatcher(
        [WebhookTarget(f, server.url(f"/{f}")) for f in ("json", "slack", "discord")]
    )
    deliver(d, [ALERT])
    text = "AAPL stacked BUY imbalance: 4 rows (bar 2026-11-23T14:58:00+00:00)"
    assert server.bodies("/json") == [ALERT]
    assert server.bodies("/slack") == [{"text": text}]
    assert server.bodies("/discord") == [{"content": text}]
    assert d.counters()["webhook_sent"] == 3


def test_a_5xx_is_retried_with_backoff(server: WebhookServer) -> None:
    server.script["/hook"] = [(500, {}), (503, {})]
    d = WebhookDispatcher([WebhookTarget("json", server.url("/hook"))], backoff_s=0.1)
    deliver(d, [ALERT])
    got = [r for r in server.received if r.path == "/hook"]
    assert [r.status for r in got] == [500, 503, 200]
    # 0.1 s then 0.2 s: the waits double
    assert got[1].at - got[0].at >= 0.09 and got[2].at - got[1].at >= 0.19
    c = d.counters()
    assert (c["webhook_sent"], c["webhook_retries"], c["webhook_failed"]) == (1, 2, 0)


def test_a_429_waits_for_retry_after(server: WebhookServer) -> None:
    server.script["/hook"] = [(429, {"Retry-After": "1"})]
    d = WebhookDispatcher([WebhookTarget("slack", server.url("/hook"))], backoff_s=0.01)
    deliver(d, [ALERT])
    got = [r for r in server.received if r.path == "/hook"]
    assert [r.status for r in got] == [429, 200]
    assert got[1].at - got[0].at >= 0.95  # the server's second, not the 10 ms backoff


def test_another_4xx_is_not_retried(server: WebhookServer) -> None:
    server.script["/hook"] = [(404, {})]
    d = WebhookDispatcher([WebhookTarget("json", server.url("/hook"))], backoff_s=0.01)
    deliver(d, [ALERT])
    assert [r.status for r in server.received] == [404]
    assert (d.stats.failed, d.stats.retries) == (1, 0)


def test_connection_errors_are_retried_then_given_up() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = WebhookDispatcher(
        [WebhookTarget("json", f"http://127.0.0.1:{port}/hook")], retries=2, backoff_s=0.01
    )
    deliver(d, [ALERT])
    assert (d.stats.sent, d.stats.retries, d.stats.failed) == (0, 2, 1)


def test_each_webhook_is_rate_limited(server: WebhookServer) -> None:
    # 10 a second with bursts of 2: two at once, then one every 100 ms
    d = WebhookDispatcher(
        [WebhookTarget("json", server.url("/a")), WebhookTarget("json", server.url("/b"))],
        per_minute=600,
        burst=2,
    )
    deliver(d, [{**ALERT, "rows": k} for k in range(5)])
    for path in ("/a", "/b"):
        times = [r.at for r in server.received if r.path == path]
        assert [b["rows"] for b in server.bodies(path)] == [0, 1, 2, 3, 4]
        assert times[1] - times[0] < 0.08
        assert times[4] - times[0] >= 0.27  # three tokens of 100 ms each


def test_a_full_queue_drops_counts_and_never_blocks(server: WebhookServer) -> None:
    server.delay_s = 0.3  # a slow webhook
    engine = Engine(
        settings(ALERT_WEBHOOKS=f"json={server.url('/slow')}", ALERT_WEBHOOK_QUEUE=2),
        "postgresql://unused",
        "redis://127.0.0.1:1",
    )

    async def go() -> tuple[float, dict]:
        started = time.perf_counter()
        engine.webhooks.submit([{**ALERT, "rows": k} for k in range(10)])
        took = time.perf_counter() - started
        status = engine.status()
        assert await engine.webhooks.drain(5)
        await engine.webhooks.close()
        await engine.redis.aclose()
        return took, status

    took, status = asyncio.run(go())
    assert took < 0.05
    assert (status["webhooks"], status["webhook_dropped"], status["webhook_queued"]) == (1, 8, 2)
    assert [b["rows"] for b in server.bodies("/slow")] == [0, 1]


def test_webhook_urls_stay_out_of_logs(
    server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script["/services/T000/B000/s3cr3t"] = [(500, {}), (400, {})]
    url = server.url("/services/T000/B000/s3cr3t")
    d = WebhookDispatcher([WebhookTarget("slack", url)], backoff_s=0.01)
    with caplog.at_level(logging.DEBUG, logger="streaming.engine.webhooks"):
        deliver(d, [ALERT])
    assert "127.0.0.1" in caplog.text and "HTTP 500" in caplog.text
    assert "s3cr3t" not in caplog.text and "s3cr3t" not in repr(d.targets)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("teams=https://example.com/x", "format 'teams' is unknown: use one of json, slack"),
        ("slack=ftp://example.com/s3cr3t", "must be an http(s) URL with a host, got scheme 'ftp'"),
        ("json=https:///s3cr3t", "got no host"),
        ("https://example.com/s3cr3t", "entry must be format=url"),
    ],
)
def test_bad_webhook_settings_are_refused_clearly(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        settings(ALERT_WEBHOOKS=value)
    assert message in str(err.value) and "s3cr3t" not in str(err.value)


def test_webhook_settings_parse() -> None:
    s = settings(ALERT_WEBHOOKS="Slack=https://hooks.example/a, discord=http://127.0.0.1:9/b")
    assert [(t.format, t.host) for t in s.alert_webhooks] == [
        ("slack", "hooks.example"),
        ("discord", "127.0.0.1"),
    ]
    assert settings().alert_webhooks == []


def test_retry_after_values() -> None:
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert retry_after("2") == 2.0
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("-5") == 0.0


@pytest.mark.parametrize(
    ("alert", "line"),
    [
        (
            {"type": "lvn", "symbol": "AAPL", "lvn": 100.6, "horizon": "session",
             "direction": "UP", "price": 100.275, "distance_pct": 0.323},
            "AAPL near LVN 100.6 (session): price 100.275, 0.323% below it",
        ),
        (
            {"type": "aggressive_flow", "symbol": "AAPL", "direction": "BUY", "score": 80.0,
             "intensity": "STRONG"},
            "AAPL aggressive BUY flow: score 80 (STRONG)",
        ),
        (
            {"type": "vwap_band", "symbol": "AAPL", "band": "lower", "k": 2.0, "level": 99.8,
             "price": 99.7, "vwap": 100.0, "sd": 0.1},
            "AAPL touched the lower VWAP band (2 sd, 99.8): price 99.7, VWAP 100",
        ),
        (
            {"type": "big_print", "symbol": "ETHUSDT", "size": 12.5, "price": 2001.5,
             "side": None, "print_time": "2026-11-23T15:00:03+00:00"},
            "ETHUSDT big print: 12.5 @ 2001.5 (unclassified) at 2026-11-23T15:00:03+00:00",
        ),
        ({"type": "new_kind", "symbol": "X", "a": 1}, "X new_kind: a=1"),
        ({"type": "lvn", "symbol": "X"}, "X lvn: "),  # fields missing: listed, never a crash
    ],
)  # fmt: skip
def test_chat_lines(alert: dict, line: str) -> None:
    assert alert_text(alert) == line


def test_a_discord_message_is_cut_at_2000_characters() -> None:
    long = {"type": "new_kind", "symbol": "X", "a": "x" * 3000}
    assert len(webhook_body("discord", long)["content"]) == 2000
    assert len(webhook_body("slack", long)["text"]) > 3000
