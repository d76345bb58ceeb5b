"""The engine keys session-scoped data (session profile, session VWAP) on the symbol's own
session in its market's calendar, never on the UTC date."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fakes.engine_rows import insert_candles, symbol_ids

from marketflow.settings import Settings
from streaming.engine.loop import Engine
from streaming.engine.session_clock import current_session

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
