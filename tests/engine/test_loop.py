"""The engine loop end to end on a real PostgreSQL and Redis: market_state and signals rows,
Redis messages, alerts fired once per approach, rising edge + cooldown, set-based reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from streaming.engine.loop import Engine
from tests.support.engine_rows import NOW, RISING, insert_candles, seed_aapl, settings, symbol_ids
from tests.support.redis_listener import Listener


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def run(coro):
    return asyncio.run(coro)


def test_loop_end_to_end_writes_and_publishes(db_url, redis_url, conn):
    aapl = seed_aapl(conn)
    listener = Listener(redis_url, "market_state", "signals", "alerts")

    async def go():
        engine = Engine(settings(), db_url, redis_url)
        try:
            first = await engine.tick(NOW)
            second = await engine.tick(NOW + timedelta(seconds=1))
            return engine, first, second
        finally:
            await engine.close()

    engine, first, second = run(go())
    assert first.ok and second.ok, (first.error, second.error)
    assert set(first.ran) >= {"reference", "state", "lvn", "flow", "strategies"}
    assert "state" not in second.ran and "lvn" not in second.ran  # 5 s and 2 s cadences

    # market_state: one row per symbol; AAPL at 100.275 above VAH 100.2 with 75/25 flow
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "select symbol_id, state, confidence, poc, balance_high, balance_low from market_state"
        ).fetchall()
    }
    assert (
        len(rows)
        == len(symbol_ids(conn))
        - conn.execute(
            "select count(*) from symbols where not active or asset_type = 'binary_option'"
        ).fetchone()[0]
    )
    state, confidence, poc, vah, val = rows[aapl]
    # 0.275 % from POC +40, above VAH +30, momentum 0.78 % (+0), pressure +50 → +10
    assert (state, confidence, poc, vah, val) == ("IMBALANCE_UP", 80.0, 100.0, 100.2, 99.9)
    others = {s for sid, (s, *_rest) in rows.items() if sid != aapl}
    assert others == {"UNKNOWN"}  # no candles or profile for them

    # signals: the SMA breakout and the auction-market entry, once each despite two ticks
    sig = conn.execute(
        "select st.name, s.type, s.price, s.details from signals s"
        " join strategies st on st.id = s.strategy_id order by st.name"
    ).fetchall()
    assert [(n, t) for n, t, _, _ in sig] == [
        ("AAPL SMA20 Breakout", "BUY"),
        ("auction_market", "BUY"),
    ]
    sma_details = sig[0][3]
    assert sma_details["period"] == 20
    assert sma_details["sma"] == pytest.approx(sum(RISING[-20:]) / 20)
    auction = sig[1][3]
    assert auction["aggression_score"] == 100 and auction["flow_direction"] == "BUY"
    assert auction["market_state"] == "IMBALANCE_UP"
    assert auction["atr"] == pytest.approx(0.225)  # each bar spans 0.025 + 0.2

    got = listener.drain()
    listener.close()
    assert {m["symbol"] for m in got["market_state"]} >= {"AAPL", "MSFT"}
    aapl_state = next(m for m in got["market_state"] if m["symbol"] == "AAPL")
    assert aapl_state["state"] == "IMBALANCE_UP" and aapl_state["time"] == NOW.isoformat()
    assert sorted((m["strategy"], m["type"]) for m in got["signals"]) == [
        ("AAPL SMA20 Breakout", "BUY"),
        ("auction_market", "BUY"),
    ]
    assert all(set(m) == {"symbol", "strategy", "type", "time", "details"} for m in got["signals"])
    kinds = sorted(m["type"] for m in got["alerts"])
    assert kinds == ["aggressive_flow", "lvn"]  # once each, not again on the second tick
    lvn = next(m for m in got["alerts"] if m["type"] == "lvn")
    assert lvn["lvn"] == 100.6 and lvn["direction"] == "UP" and lvn["horizon"] == "session"
    assert lvn["distance"] == pytest.approx(100.6 - RISING[-1])
    flow = next(m for m in got["alerts"] if m["type"] == "aggressive_flow")
    assert (flow["score"], flow["direction"], flow["intensity"]) == (100.0, "BUY", "STRONG")
    assert engine.counters.signals == 2 and engine.counters.db_errors == 0


def test_incremental_reader_matches_a_fresh_read(db_url, conn):
    """The kept candle window (tail re-read + rotating full re-reads) equals a fresh read,
    including a late rewrite of an old candle once its symbol's turn comes."""
    import numpy as np

    from streaming.engine import queries

    ids = symbol_ids(conn)
    for k, sym in enumerate(("AAPL", "MSFT", "NVDA")):
        insert_candles(conn, ids[sym], [100 + k + 0.01 * j for j in range(70)], NOW)

    def same(a, b) -> None:
        assert np.array_equal(a.candle_offsets, b.candle_offsets)
        for name in ("candle_ts", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            universe = await queries.load_universe(c)
            reader = queries.SnapshotReader(full_every_s=3.0)  # a symbol slice per tick
            window = timedelta(minutes=61)
            await reader.read(c, universe, NOW, window)
            for step in range(1, 6):
                now = NOW + timedelta(seconds=step)
                if step == 1:  # the minute being built changes: the tail sees it at once
                    conn.execute(
                        "update candles_1m set close = 555 where symbol_id = %s and ts = %s",
                        (ids["AAPL"], NOW - timedelta(minutes=1)),
                    )
                if step == 2:  # reconciliation rewrites a 40-minute-old candle
                    conn.execute(
                        "update candles_1m set close = 444 where ts = %s",
                        (NOW - timedelta(minutes=40),),
                    )
                got = await reader.read(c, universe, now, window)
                fresh = await queries.load_snapshot(c, universe, now, window)
                if step == 1:
                    same(got, fresh)
                if step == 2:
                    assert not np.array_equal(got.close, fresh.close)  # not yet re-read
            same(got, fresh)  # after a full rotation every symbol was re-read
            assert reader.full_reads == 1

    run(go())


def test_state_rows_on_change_or_refresh_and_a_vwap_rule(db_url, redis_url, conn):
    aapl = seed_aapl(conn)
    conn.execute(
        "insert into strategies (name, definition, cooldown_seconds) values ('above vwap', %s, 0)",
        (
            json.dumps(
                {
                    "type": "rules",
                    "symbols": ["AAPL"],
                    "signal": "BUY",
                    "all": [{"metric": "price", "op": ">", "ref": "vwap"}],
                }
            ),
        ),
    )

    async def go() -> None:
        engine = Engine(settings(ENGINE_STATE_REFRESH_SECONDS=20), db_url, redis_url)
        try:
            for k in range(0, 26):  # state passes at 0, 5, 10, 15, 20, 25 s
                assert (await engine.tick(NOW + timedelta(seconds=k))).ok
        finally:
            await engine.close()

    run(go())
    times = [
        (t - NOW).total_seconds()
        for (t,) in conn.execute(
            "select ts from market_state where symbol_id = %s order by ts", (aapl,)
        ).fetchall()
    ]
    assert times == [0.0, 20.0]  # unchanged: only the keep-alive after 20 s
    msft = symbol_ids(conn)["MSFT"]
    assert (
        conn.execute(  # UNKNOWN is written once, not kept alive
            "select count(*) from market_state where symbol_id = %s", (msft,)
        ).fetchone()[0]
        == 1
    )
    # session VWAP from 14:30 UTC: the rising closes end above it
    (details,) = conn.execute(
        "select s.details from signals s join strategies t on t.id = s.strategy_id"
        " where t.name = 'above vwap'"
    ).fetchone()
    assert details["vwap"] < details["price"] == RISING[-1]


def test_tick_with_no_symbols(db_url, redis_url, conn):
    conn.execute("update symbols set active = false")

    async def go():
        engine = Engine(settings(), db_url, redis_url)
        try:
            return await engine.tick(NOW)
        finally:
            await engine.close()

    report = run(go())
    assert report.ok and report.state_rows == 0 and report.signals == []


def test_a_reference_reload_failing_half_way_keeps_the_old_one(
    db_url, redis_url, conn, monkeypatch
):
    """Symbols, strategies and configs are replaced together: a reload that read the new
    universe and then lost the database left target masks sized for the old universe,
    and every tick failed until the next reload 30 s later."""
    seed_aapl(conn)
    from streaming.engine import queries

    async def go() -> list:
        engine = Engine(settings(), db_url, redis_url)
        try:
            reports = [await engine.tick(NOW)]
            conn.execute(
                "insert into symbols (symbol, market, timezone) values"
                " ('ZZNEW', 'XNYS', 'America/New_York')"
            )
            real = queries.load_configs

            async def lost(c):
                raise psycopg.OperationalError("server closed the connection")

            monkeypatch.setattr(queries, "load_configs", lost)
            engine._due.pop("reference", None)
            reports.append(await engine.tick(NOW + timedelta(seconds=1)))
            monkeypatch.setattr(queries, "load_configs", real)
            reports.append(await engine.tick(NOW + timedelta(seconds=2)))
            return reports
        finally:
            await engine.close()

    first, failed, after = run(go())
    assert first.ok and not failed.ok
    assert after.ok, after.error
