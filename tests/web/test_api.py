"""The dashboard's JSON API against a seeded database: timeframes aggregated in the market's
time zone, order flow, the session profile, the watchlist from raw tables or its mart,
strategy edits validated and stored, read-only orders, Polymarket, OpenAPI and /docs, and
a page served with a clear message when the chart bundle is not installed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from streaming.web.pages import CHARTS_BUNDLE, CHARTS_MISSING, STATIC_DIR
from tests.support.web_seed import AAPL_MINUTES, seed, walk
from tests.support.web_served import serve


@pytest.fixture
def seeded(db_url: str) -> dict[str, float]:
    return seed(db_url)


def get(base: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}{path}", params=params, timeout=10)


def test_candles_are_aggregated_in_the_market_time_zone(
    redis_url: str, db_url: str, seeded: dict[str, float]
) -> None:
    bars = walk(AAPL_MINUTES, 180.0, 1)
    with serve(redis_url, db_url) as web:
        hourly = get(web.base, "/api/candles", symbol="aapl", tf="1h").json()
        daily = get(web.base, "/api/candles", symbol="AAPL", tf="1d").json()
        london = get(web.base, "/api/candles", symbol="VOD.L", tf="1d").json()
        bad = get(web.base, "/api/candles", symbol="AAPL", tf="2h")
        unknown = get(web.base, "/api/candles", symbol="NOPE")
    assert hourly["timezone"] == "America/New_York" and hourly["timeframe"] == "1h"
    session = hourly["candles"][-3:]
    # New York hours: 09:30-09:59 in the 09:00 bar, then 10:00 and 11:00 (EST = UTC-5)
    assert [c["time"] for c in session] == [
        "2026-11-23T14:00:00+00:00",
        "2026-11-23T15:00:00+00:00",
        "2026-11-23T16:00:00+00:00",
    ]
    first = session[0]
    assert first["t"] == int(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp())  # wall clock
    assert first["open"] == bars[0][0] and first["close"] == bars[29][3]
    assert first["high"] == max(b[1] for b in bars[:30])
    assert first["low"] == min(b[2] for b in bars[:30])
    assert first["volume"] == sum(1000 + 37 * (i % 11) for i in range(30))
    # the day bar starts at midnight in New York, and in London (UTC in November)
    assert daily["candles"][-1]["time"] == "2026-11-23T05:00:00+00:00"
    assert daily["candles"][-1]["close"] == seeded["last_close"]
    assert london["candles"][-1]["time"] == "2026-11-23T00:00:00+00:00"
    assert bad.status_code == 400 and "1m, 5m, 15m, 30m, 1h, 1d" in bad.json()["error"]
    assert unknown.status_code == 404


def test_flow_profile_signals_and_states(
    redis_url: str, db_url: str, seeded: dict[str, float]
) -> None:
    with serve(redis_url, db_url) as web:
        flow = get(web.base, "/api/flow", symbol="AAPL", tf="15m").json()["flow"]
        minute = get(web.base, "/api/flow", symbol="AAPL", tf="1m").json()["flow"]
        profile = get(web.base, "/api/profile", symbol="AAPL").json()
        signals = get(web.base, "/api/signals", symbol="AAPL", strategy="auction_market").json()
        states = get(web.base, "/api/states", symbol="AAPL").json()["states"]
    assert len(flow) == AAPL_MINUTES // 15 and len(minute) == AAPL_MINUTES
    assert flow[0]["delta"] == pytest.approx(sum(m["delta"] for m in minute[:15]))
    assert flow[0]["cvd"] == pytest.approx(minute[14]["cvd"])  # CVD at the bar's end
    session = profile["session"]
    assert session["poc"] == seeded["poc"] and session["lvns"] == [
        {"price": seeded["lvn"], "volume": 60.0}
    ]
    levels = profile["levels"]
    assert levels and all(lv["buy"] + lv["sell"] == pytest.approx(lv["total"]) for lv in levels)
    assert [lv["price"] for lv in levels] == sorted(lv["price"] for lv in levels)
    # only earlier sessions' POCs are naked: the session's own candidate row is not one
    assert profile["naked_pocs"] == [{"session_date": "2026-11-20", "poc": seeded["naked_poc"]}]
    assert [s["type"] for s in signals["signals"]] == ["BUY", "SELL"]  # newest first
    assert [s["state"] for s in states] == ["IMBALANCE_UP", "BALANCE"]


def test_watchlist_from_raw_tables_then_from_the_mart(
    redis_url: str, db_url: str, seeded: dict[str, float]
) -> None:
    with serve(redis_url, db_url) as web:
        raw = get(web.base, "/api/watchlist").json()
    assert raw["source"] == "raw"
    aapl = next(r for r in raw["rows"] if r["symbol"] == "AAPL")
    assert aapl["last_price"] == seeded["last_close"]
    assert aapl["previous_close"] == 179.2
    assert aapl["price_change"] == pytest.approx(seeded["last_close"] - 179.2)
    assert aapl["market_state"] == "IMBALANCE_UP" and aapl["state_confidence"] == 72
    assert aapl["session_poc"] == seeded["poc"] and aapl["nearest_lvn"] == seeded["lvn"]
    assert aapl["last_signal_type"] == "BUY" and aapl["last_signal_strategy"] == "auction_market"
    assert aapl["timezone"] == "America/New_York"

    with psycopg.connect(db_url, autocommit=True) as conn:  # what dbt builds, in its schema
        conn.execute("create schema analytics")
        conn.execute(
            "create table analytics.watchlist_latest as select id as symbol_id, symbol,"
            " 123.45::float8 as last_price, 'BALANCE'::text as market_state"
            " from symbols where symbol = 'AAPL'"
        )
    with serve(redis_url, db_url) as web:
        mart = get(web.base, "/api/watchlist").json()
    assert mart["source"] == "watchlist_latest"
    assert mart["rows"] == [
        {
            "name": "Apple Inc.",
            "timezone": "America/New_York",
            "symbol": "AAPL",
            "last_price": 123.45,
            "market_state": "BALANCE",
        }
    ]


def _cooldown(db_url: str) -> tuple[int, int, bool]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select id, cooldown_seconds, active from strategies where name = 'auction_market'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), bool(row[2])


def test_strategy_edits_are_validated_and_stored(redis_url: str, db_url: str) -> None:
    sid, _, _ = _cooldown(db_url)
    with (
        serve(redis_url, db_url) as web,
        httpx.Client(base_url=web.base, timeout=10, headers=web.auth) as http,
    ):
        listed = http.get("/api/strategies").json()["strategies"]
        auction = next(s for s in listed if s["id"] == sid)
        assert {c["symbol"] for c in auction["configs"]} >= {"AAPL", "MSFT"}
        ok = http.patch(f"/api/strategies/{sid}", json={"active": False, "cooldown_seconds": 90})
        assert ok.status_code == 200 and ok.json()["cooldown_seconds"] == 90
        assert _cooldown(db_url)[1:] == (90, False)
        for change, reason in (
            ({"cooldown_seconds": -1}, "cooldown_seconds"),
            ({"definition": {"type": "nope"}}, "type must be one of"),
            ({"definition": {"type": "auction_market", "risk_per_trade_pct": 50}}, "(0, 5]"),
            ({"colour": "red"}, "unknown fields: colour"),
        ):
            res = http.patch(f"/api/strategies/{sid}", json=change)
            assert res.status_code == 400 and reason in res.json()["error"], res.text
        assert _cooldown(db_url)[1:] == (90, False)  # nothing of the refused edits stored
        # the footprint terms (docs/strategies.md) through the typed body and the engine
        footprint = {
            "type": "rules",
            "signal": "BUY",
            "all": [
                {"metric": "stacked_buy_imbalance", "op": ">=", "value": 3},
                {"metric": "price", "op": "<", "ref": "vwap_lower", "k": 2},
                {"metric": "ib_break", "op": "!=", "value": "BELOW"},
            ],
            "any": [{"metric": "big_print", "op": "==", "value": "BUY", "seconds": 120}],
        }
        stored = http.patch(f"/api/strategies/{sid}", json={"definition": footprint})
        assert stored.status_code == 200, stored.text
        assert stored.json()["definition"]["all"][1] == footprint["all"][1]
        for condition, reason in (
            ({"metric": "price", "op": "<", "ref": "vwap_lower", "k": 0}, "(0, 5]"),
            ({"metric": "price", "op": "<", "ref": "vwap_upper"}, "k"),
            ({"metric": "big_print", "op": "==", "value": "BUY", "seconds": 901}, "900"),
            ({"metric": "ib_break", "op": ">", "value": "ABOVE"}, "op"),
        ):
            change = {"definition": {**footprint, "all": [condition]}}
            res = http.patch(f"/api/strategies/{sid}", json=change)
            assert res.status_code == 400 and reason in res.json()["error"], res.text
        assert http.patch("/api/strategies/99999", json={"active": True}).status_code == 404

        config = {"enabled": False, "parameters": {"atr_stop_multiplier": 2.0}, "max_positions": 2}
        put = http.put(f"/api/strategies/{sid}/configs/nvda", json=config)
        assert put.status_code == 200, put.text
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "select enabled, parameters, max_positions from strategy_configs c join symbols s"
                " on s.id = c.symbol_id where s.symbol = 'NVDA' and strategy_name = %s",
                (auction["name"],),
            ).fetchone()
        assert row == (False, {"atr_stop_multiplier": 2.0}, 2)
        bad = http.put(f"/api/strategies/{sid}/configs/NVDA", json={"risk_per_trade_pct": 50})
        assert bad.status_code == 400 and "risk_per_trade_pct" in bad.json()["error"]
        assert http.put(f"/api/strategies/{sid}/configs/NOPE", json={}).status_code == 404
        plain = http.patch(f"/api/strategies/{sid}", content=b"active=1")
        assert plain.status_code == 415  # a form post from another page is not JSON
        foreign = http.patch(
            f"/api/strategies/{sid}", json={"active": True}, headers={"Origin": "http://evil.test"}
        )
        assert foreign.status_code == 403
        assert http.post("/api/orders", json={}).status_code == 405  # orders are read-only
    assert _cooldown(db_url)[1:] == (90, False)


def test_strategy_edits_need_the_token_when_one_is_set(redis_url: str, db_url: str) -> None:
    sid, cooldown, _ = _cooldown(db_url)
    with serve(redis_url, db_url, token="k3y") as web, httpx.Client(base_url=web.base) as http:
        refused = http.patch(f"/api/strategies/{sid}", json={"cooldown_seconds": 5})
        assert refused.status_code == 401 and _cooldown(db_url)[1] == cooldown
        wrong = {"Authorization": "Bearer nope"}
        assert http.patch(f"/api/strategies/{sid}", json={}, headers=wrong).status_code == 401
        right = {"Authorization": "Bearer k3y"}
        res = http.patch(f"/api/strategies/{sid}", json={"cooldown_seconds": 5}, headers=right)
        assert res.status_code == 200 and _cooldown(db_url)[1] == 5


def test_orders_and_polymarket(redis_url: str, db_url: str, seeded: dict[str, float]) -> None:
    with serve(redis_url, db_url) as web:
        orders = get(web.base, "/api/orders").json()
        poly = get(web.base, "/api/polymarket").json()
    assert [o["status"] for o in orders["orders"]] == ["filled", "rejected"]
    assert orders["positions"][0]["symbol"] == "AAPL" and orders["positions"][0]["net_qty"] == 10
    assert orders["positions"][0]["last_price"] == seeded["last_close"]
    market = poly["markets"][0]
    assert market["question"].startswith("Will the Fed") and market["edge"] == 0.012
    assert market["yes_ask"] == 0.43 and market["no_ask"] == 0.57
    assert len(poly["opportunities"]) == 1 and poly["opportunities"][0]["size"] == 250
    assert poly["episodes_source"] == "raw" and poly["episodes"][0]["duration_seconds"] == 42


def test_openapi_document_and_docs_page(redis_url: str) -> None:
    with serve(redis_url, None) as web:
        spec = get(web.base, "/openapi.json").json()
        docs = get(web.base, "/docs")
        down = get(web.base, "/api/candles", symbol="AAPL")
    paths = spec["paths"]
    for path in ("/api/watchlist", "/api/candles", "/api/profile", "/api/strategies/{id}"):
        assert path in paths, sorted(paths)
    assert paths["/api/strategies/{id}"]["patch"]["summary"].startswith("Switch a strategy")
    assert {p["name"] for p in paths["/api/candles"]["get"]["parameters"]} == {
        "symbol",
        "tf",
        "limit",
    }
    assert not any(path.startswith(("/symbol", "/static")) for path in paths)
    assert docs.status_code == 200 and "/api/candles" in docs.text
    assert "https://" not in docs.text and "cdn" not in docs.text.lower()
    # no database: the API says so, the pages and the live feed still work
    assert down.status_code == 503 and "database unavailable" in down.json()["error"]


def test_pages_are_served_with_a_clear_message_without_the_chart_bundle(
    redis_url: str, tmp_path: Path
) -> None:
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static, ignore=shutil.ignore_patterns("vendor"))
    with serve(redis_url, None, static_dir=static) as web:
        page = get(web.base, "/symbol/AAPL")
        home = get(web.base, "/")
        bundle = get(web.base, f"/static/{CHARTS_BUNDLE}")
    assert page.status_code == 200 and CHARTS_MISSING.split(":")[0] in page.text
    assert "make install" in page.text and CHARTS_BUNDLE not in page.text.split("</head>")[0]
    assert home.status_code == 200 and 'data-page="watchlist"' in home.text
    assert bundle.status_code == 404


def test_strategy_performance_and_episodes_from_their_marts(redis_url: str, db_url: str) -> None:
    sid, _, _ = _cooldown(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:  # what dbt builds, in its schema
        conn.execute("create schema analytics")
        conn.execute(
            "create table analytics.strategy_performance as select 'all_history'::text as scope,"
            " %s::bigint as strategy_id, 'AAPL'::text as symbol, 4 as signals,"
            " 0.75::float8 as hit_rate_60m, 1.25::float8 as mean_return_60m_pct,"
            " 1 as take_profits, 2 as stop_losses",
            (sid,),
        )
        conn.execute(
            "create table analytics.binary_arbitrage_episodes as select 'pair'::text as kind,"
            " 'm1'::text as market_id, null::text as event_id, 3 as opportunities,"
            " now() as started_at, now() as ended_at, 12.0::float8 as duration_seconds,"
            " 0.03::float8 as best_edge, 80.0::float8 as size_at_best_edge"
        )
    with serve(redis_url, db_url) as web:
        strategies = get(web.base, "/api/strategies").json()
        poly = get(web.base, "/api/polymarket").json()
    assert strategies["performance_source"] == "strategy_performance"
    auction = next(s for s in strategies["strategies"] if s["id"] == sid)
    assert auction["performance"] == [
        {
            "strategy_id": sid,
            "symbol": "AAPL",
            "signals": 4,
            "hit_rate_60m": 0.75,
            "mean_return_60m_pct": 1.25,
            "take_profits": 1,
            "stop_losses": 2,
        }
    ]
    assert poly["episodes_source"] == "binary_arbitrage_episodes"
    assert poly["episodes"][0]["opportunities"] == 3


def test_a_connection_the_database_dropped_is_replaced(redis_url: str, db_url: str) -> None:
    """A PostgreSQL restart or idle timeout ends the server's idle connections; the next
    request is answered on a new one instead of failing once per idle connection."""
    with serve(redis_url, db_url) as web:
        assert get(web.base, "/api/symbols").status_code == 200  # leaves an idle connection
        with psycopg.connect(db_url, autocommit=True) as conn:
            ended = conn.execute(
                "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = 'marketflow-web') t"
            ).fetchone()
        assert ended is not None and ended[0] >= 1
        again = get(web.base, "/api/symbols")
    assert again.status_code == 200 and again.json()["symbols"]
