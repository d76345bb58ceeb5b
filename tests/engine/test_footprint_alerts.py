"""Footprint alerts: a stacked imbalance, a session VWAP band touch and a big print, read
by the engine from real footprint rows, published on the ``alerts`` channel of a real
Redis once per event, and delivered to a webhook on loopback; the band's re-arming on
hand-built arrays."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import numpy as np
import psycopg
import pytest

from strategies.footprint import Footprint
from strategies.snapshot import Universe
from streaming.engine.alerts import OnceLatch
from streaming.engine.footprint_alerts import BIG_PRINT_ALERT_AGE_S, vwap_band_alerts
from streaming.engine.loop import Engine
from tests.support.engine_rows import NOW, RISING, seed_aapl, settings
from tests.support.redis_listener import Listener
from tests.support.webhook_server import WebhookServer


def add_stack(conn: psycopg.Connection, sid: int, bucket: datetime, side: str, rows: int) -> None:
    conn.cursor().executemany(
        "insert into footprint_imbalances (symbol_id, bucket, price, side, volume, opposite,"
        " stack_len) values (%s, %s, %s, %s, 50, 5, %s)",
        [(sid, bucket, 100.0 + 0.01 * j, side, rows) for j in range(rows)],
    )


def add_print(conn: psycopg.Connection, sid: int, ts: datetime, side: str | None, size: float):
    bucket = ts.replace(second=0, microsecond=0)
    conn.execute(
        "insert into big_prints (symbol_id, bucket, print_no, ts, price, size, side, threshold)"
        " values (%s, %s, (select count(*) from big_prints where symbol_id = %s and bucket = %s),"
        " %s, 100.25, %s, %s, 900)",
        (sid, bucket, sid, bucket, ts, size, side),
    )


def test_footprint_alerts_fire_once_per_event_on_redis_and_the_webhook(
    db_url: str, redis_url: str
) -> None:
    server = WebhookServer()
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = seed_aapl(conn)  # last close 100.275
        add_stack(conn, aapl, NOW - timedelta(minutes=2), "buy", 4)
        add_stack(conn, aapl, NOW - timedelta(minutes=3), "sell", 2)  # below 3 rows
        conn.execute(
            "insert into session_vwap (symbol_id, bucket, session_date, vwap, sd, volume)"
            " values (%s, %s, %s, 100.0, 0.1, 5e4)",
            (aapl, NOW - timedelta(minutes=1), NOW.date()),
        )  # upper 2-sd band 100.2: touched
        add_print(conn, aapl, NOW - timedelta(seconds=30), "buy", 5000.0)
        add_print(conn, aapl, NOW - timedelta(seconds=BIG_PRINT_ALERT_AGE_S + 60), "sell", 7000.0)
        listener = Listener(redis_url, "alerts")
        engine = Engine(
            settings(ALERT_WEBHOOKS=f"json={server.url('/json')},slack={server.url('/slack')}"),
            db_url,
            redis_url,
        )

        async def go() -> list[list[str]]:
            kinds = []
            try:
                for seconds in (0, 2, 4):  # the same events seen again: no new alert
                    report = await engine.tick(NOW + timedelta(seconds=seconds))
                    assert report.ok, report.error
                    kinds.append(sorted(a["type"] for a in report.alerts if a["type"] in TYPES))
                # new events: a longer stack on a newer bar and a new print
                add_stack(conn, aapl, NOW - timedelta(minutes=1), "buy", 6)
                add_print(conn, aapl, NOW + timedelta(seconds=5), None, 8000.0)
                report = await engine.tick(NOW + timedelta(seconds=6))
                kinds.append(sorted(a["type"] for a in report.alerts if a["type"] in TYPES))
                assert await engine.webhooks.drain(5)
            finally:
                await engine.close()
            return kinds

        kinds = asyncio.run(go())
    got = [m for m in listener.drain()["alerts"] if m["type"] in TYPES]
    listener.close()
    server.close()

    assert kinds == [
        ["big_print", "stacked_imbalance", "vwap_band"],
        [],
        [],
        ["big_print", "stacked_imbalance"],
    ]
    by_type = {(m["type"], m["time"]): m for m in got}
    assert len(got) == 5
    stack = by_type[("stacked_imbalance", NOW.isoformat())]
    assert (stack["symbol"], stack["side"], stack["rows"]) == ("AAPL", "BUY", 4)
    assert stack["bar"] == (NOW - timedelta(minutes=2)).isoformat()
    band = by_type[("vwap_band", NOW.isoformat())]
    assert (band["band"], band["k"], band["vwap"], band["sd"]) == ("upper", 2.0, 100.0, 0.1)
    assert band["level"] == pytest.approx(100.2) and band["price"] == pytest.approx(RISING[-1])
    first = by_type[("big_print", NOW.isoformat())]  # the 3-minute-old sell print is not news
    assert (first["side"], first["size"], first["price"]) == ("BUY", 5000.0, 100.25)
    later = (NOW + timedelta(seconds=6)).isoformat()
    assert by_type[("stacked_imbalance", later)]["rows"] == 6
    assert by_type[("big_print", later)]["side"] is None

    # every alert reached both webhooks, in the webhook's format
    def canon(alerts: list[dict]) -> list[str]:
        return sorted(json.dumps(a, sort_keys=True) for a in alerts if a["type"] in TYPES)

    assert canon(server.bodies("/json")) == canon(got)
    assert {m["type"] for m in server.bodies("/json")} >= TYPES
    assert any("stacked BUY imbalance: 6 rows" in b["text"] for b in server.bodies("/slack"))


TYPES = {"stacked_imbalance", "vwap_band", "big_print"}


def test_a_vwap_band_alert_rearms_when_price_is_back_inside() -> None:
    universe = Universe(np.array([1]), ("S",), ("XNYS",), ("stock",))
    fp = Footprint.empty(1)
    fp.vwap[:], fp.vwap_sd[:] = 100.0, 1.0
    latch = OnceLatch()

    class M:  # only the price is read
        def __init__(self, price: float) -> None:
            self.price = np.array([price])

    def alerts(price: float) -> list[str]:
        got = vwap_band_alerts(universe, M(price), fp, NOW, latch, 2.0)  # type: ignore[arg-type]
        return [a["band"] for a in got]

    assert [alerts(p) for p in (101.0, 102.0, 102.5, 101.9, 102.1, 97.9, 97.0)] == [
        [], ["upper"], [], [], ["upper"], ["lower"], [],
    ]  # fmt: skip
    fp.vwap_sd[:] = 0.0  # no spread yet (one print): no band, no alert
    assert alerts(150.0) == []
