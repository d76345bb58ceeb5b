"""The engine keys session-scoped data (session profile, session VWAP) on the symbol's own
session in its market's calendar, never on the UTC date."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from core.settings import Settings
from strategies.session_clock import current_session
from strategies.snapshot import (
    PROFILE_CURRENT,
    PROFILE_NONE,
    PROFILE_STALE,
    Profile,
    Snapshot,
    Universe,
    compute_metrics,
    only_current_profiles,
)
from streaming.engine.loop import Engine
from tests.support.engine_rows import insert_candles, insert_flow, insert_profile, symbol_ids

MONDAY_OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # 09:30 New York
# 20:00 New York on Monday: after-hours, already Tuesday in UTC
AFTER_HOURS = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
RISING = [99.5 + 0.025 * k for k in range(32)]


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("market", "now", "day", "opened"),
    [
        ("XNYS", datetime(2026, 11, 23, 15, 0, tzinfo=UTC), date(2026, 11, 23), MONDAY_OPEN),
        ("XNYS", AFTER_HOURS, date(2026, 11, 23), MONDAY_OPEN),
        # before Tuesday's open the current session is still Monday's
        ("XNYS", datetime(2026, 11, 24, 14, 29, tzinfo=UTC), date(2026, 11, 23), MONDAY_OPEN),
        (
            "XNYS",
            datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
            date(2026, 11, 24),
            datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
        ),
        # Saturday → Friday's session
        (
            "XNYS",
            datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            date(2026, 11, 27),  # day after Thanksgiving, an early close
            datetime(2026, 11, 27, 14, 30, tzinfo=UTC),
        ),
        (
            "XLON",
            datetime(2026, 11, 23, 7, 59, tzinfo=UTC),
            date(2026, 11, 20),
            datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        ),
        (
            "24/7",
            datetime(2026, 11, 24, 0, 30, tzinfo=UTC),
            date(2026, 11, 24),
            datetime(2026, 11, 24, tzinfo=UTC),
        ),
    ],
)
def test_current_session(market: str, now: datetime, day: date, opened: datetime) -> None:
    current = current_session(market, now)
    assert current is not None
    assert (current.day, current.open) == (day, opened)
    assert current.previous_open is not None and current.previous_open < current.open


def test_current_session_of_an_unknown_market_is_none() -> None:
    assert current_session("NOPE", AFTER_HOURS) is None


def test_session_vwap_survives_midnight_utc_in_us_after_hours(db_url, redis_url) -> None:
    """At 20:00 New York (01:00 UTC the next day) the session VWAP still runs from
    Monday's 09:30 open; keyed on the UTC date it was NaN and a VWAP rule never fired."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = symbol_ids(conn)["AAPL"]
        insert_candles(conn, aapl, [100.0] * 30, MONDAY_OPEN + timedelta(minutes=30))
        insert_candles(conn, aapl, RISING, AFTER_HOURS)  # after-hours prints
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds)"
            " values ('above vwap', %s, 0)",
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
        engine = Engine(settings(), db_url, redis_url)
        try:
            assert (await engine.tick(AFTER_HOURS)).ok
        finally:
            await engine.close()

    asyncio.run(go())
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select s.details, s.symbol_id from signals s join strategies t"
            " on t.id = s.strategy_id where t.name = 'above vwap'"
        ).fetchone()
        # from Monday's open: the 30 regular minutes and the 32 after-hours ones
        (expected,) = conn.execute(
            "select sum(vwap * volume) / sum(volume) from candles_1m"
            " where symbol_id = %s and ts >= %s",
            (aapl, MONDAY_OPEN),
        ).fetchone()
    assert row is not None, "no VWAP signal: the session VWAP was NaN"
    details, sid = row
    assert sid == aapl
    assert details["vwap"] == pytest.approx(expected)
    assert details["price"] == RISING[-1]


# --- the session profile's age ---------------------------------------------------------------
TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 New York, Tuesday's session
TUESDAY_OPEN = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
MONDAY_LAST = datetime(2026, 11, 23, 20, 59, tzinfo=UTC)  # Monday's last profile minute
FRIDAY_LAST = datetime(2026, 11, 20, 20, 59, tzinfo=UTC)


def _profile(buckets: list[datetime | None], lvn: float) -> Profile:
    n = len(buckets)
    return Profile(
        poc=np.full(n, 100.0),
        vah=np.full(n, 100.2),
        val=np.full(n, 99.9),
        bucket=np.array([b.timestamp() if b else np.nan for b in buckets]),
        lvns=[[{"price": lvn, "low": lvn, "high": lvn}] if b else [] for b in buckets],
    )


def test_only_current_profiles_drops_an_earlier_sessions_profile() -> None:
    n = 4
    universe = Universe(
        np.arange(1, n + 1, dtype=np.int64),
        ("A", "B", "C", "D"),
        ("XNYS",) * 3 + ("?",),
        ("stock",) * n,
    )
    price = np.full(1, 100.3)
    snap = Snapshot(
        now=TUESDAY,
        universe=universe,
        candle_offsets=np.array([0, 1, 2, 3, 4]),
        candle_ts=np.full(n, TUESDAY.timestamp() - 60),
        high=np.repeat(price, n),
        low=np.repeat(price, n),
        close=np.repeat(price, n),
        volume=np.ones(n),
        # A: this session's; B: Monday's (stale); C: none; D: unknown market
        session=_profile([TUESDAY - timedelta(minutes=1), MONDAY_LAST, None, MONDAY_LAST], 100.6),
        # A: Monday's (the previous session: still recent); B: Friday's (too old)
        composite=_profile([MONDAY_LAST, FRIDAY_LAST, None, MONDAY_LAST], 101.0),
        flow_offsets=np.zeros(n + 1, dtype=np.int64),
        buy_pressure=np.zeros(0),
        sell_pressure=np.zeros(0),
        cvd=np.zeros(0),
    )
    opens = np.array([TUESDAY_OPEN.timestamp()] * 3 + [np.nan])
    previous = np.array([datetime(2026, 11, 23, 14, 30, tzinfo=UTC).timestamp()] * 3 + [np.nan])
    got = only_current_profiles(snap, opens, previous)
    assert got.session_status.tolist() == [
        PROFILE_CURRENT,
        PROFILE_STALE,
        PROFILE_NONE,
        PROFILE_NONE,
    ]
    assert np.isfinite(got.session.poc).tolist() == [True, False, False, False]
    assert [len(x) for x in got.session.lvns] == [1, 0, 0, 0]
    assert np.isfinite(got.composite.poc).tolist() == [True, False, False, False]
    assert [len(x) for x in got.composite.lvns] == [1, 0, 0, 0]
    assert got.composite_stale.tolist() == [False, True, False, True]
    metrics = compute_metrics(got)
    assert metrics.state.tolist()[1] == 0  # UNKNOWN
    assert metrics.profile_status.tolist() == got.session_status.tolist()
    assert metrics.profile_bucket[1] == MONDAY_LAST.timestamp()  # kept to report it


def _seed_stale(conn: psycopg.Connection) -> int:
    aapl = symbol_ids(conn)["AAPL"]
    insert_candles(conn, aapl, RISING, TUESDAY)
    # Monday's session profile, an LVN just above the price: profile runs stopped since
    insert_profile(conn, aapl, MONDAY_LAST, 100.0, 100.2, 99.9, lvns=[100.6])
    # a composite last built on Friday: older than the previous session, ignored too
    insert_profile(conn, aapl, FRIDAY_LAST, 99.0, 100.0, 98.0, horizon="composite", lvns=[100.5])
    insert_flow(
        conn,
        aapl,
        TUESDAY,
        [(60, 40, 1000), (65, 35, 1300), (70, 30, 1600), (72, 28, 1900), (75, 25, 2200)],
    )
    return aapl


def test_a_stale_session_profile_is_absent_then_a_fresh_one_is_used(
    db_url, redis_url, caplog
) -> None:
    """Profile runs stopped on Monday: on Tuesday market state is UNKNOWN with the reason,
    no LVN alert and no profile-based signal come from Monday's levels, the heartbeat
    counts it and the log says it once; a profile of Tuesday's session restores it all."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = _seed_stale(conn)
    caplog.set_level(logging.WARNING, logger="streaming.engine.loop")

    async def go() -> tuple[list, dict, dict]:
        engine = Engine(settings(), db_url, redis_url)
        try:
            stale = [await engine.tick(TUESDAY + timedelta(seconds=k)) for k in range(7)]
            status = engine.status()
            with psycopg.connect(db_url, autocommit=True) as conn:
                insert_profile(
                    conn, aapl, TUESDAY - timedelta(minutes=1), 100.0, 100.2, 99.9, lvns=[100.6]
                )
            fresh = await engine.tick(TUESDAY + timedelta(seconds=10))
            return [*stale, fresh], status, engine.status()
        finally:
            await engine.close()

    reports, stale_status, fresh_status = asyncio.run(go())
    assert all(r.ok for r in reports), [r.error for r in reports]
    stale_alerts = [a for r in reports[:-1] for a in r.alerts]
    assert [a for a in stale_alerts if a["type"] == "lvn"] == []
    assert all(s["strategy"] != "auction_market" for r in reports[:-1] for s in r.signals)
    assert stale_status["stale_session_profiles"] == 1
    assert stale_status["stale_composite_profiles"] == 1
    lines = [r.getMessage() for r in caplog.records if "AAPL has no session profile" in r.message]
    assert len(lines) == 1, lines  # once per symbol per session, not per loop
    assert "2026-11-24" in lines[0]

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select state, poc, details from market_state where symbol_id = %s order by ts",
            (aapl,),
        ).fetchall()
    (state, poc, details), *later = rows
    assert (state, poc) == ("UNKNOWN", None)
    assert details["reason"] == "stale_session_profile" and details["profile"] is None
    assert details["stale_profile_bucket"] == MONDAY_LAST.isoformat()

    fresh = reports[-1]
    assert [(s, d["profile"]) for s, _poc, d in later] == [("IMBALANCE_UP", "session")]
    assert [a["horizon"] for a in fresh.alerts if a["type"] == "lvn"] == ["session"]
    assert fresh_status["stale_session_profiles"] == 0


def test_the_previous_sessions_composite_still_gives_lvn_alerts(db_url, redis_url) -> None:
    """Before Tuesday's first profile run, Monday's composite (several sessions, rebuilt
    with each run) is recent enough for LVN alerts; Monday's session profile is not."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = _seed_stale(conn)
        insert_profile(
            conn, aapl, MONDAY_LAST, 99.0, 100.0, 98.0, horizon="composite", lvns=[100.5]
        )

    async def go():
        engine = Engine(settings(), db_url, redis_url)
        try:
            return await engine.tick(TUESDAY), engine.status()
        finally:
            await engine.close()

    report, status = asyncio.run(go())
    assert report.ok, report.error
    lvn = [a for a in report.alerts if a["type"] == "lvn"]
    assert [(a["horizon"], a["lvn"]) for a in lvn] == [("composite", 100.5)]
    assert status["stale_session_profiles"] == 1 and status["stale_composite_profiles"] == 0
