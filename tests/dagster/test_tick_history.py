"""The `tick_history` asset against a local server speaking Alpaca's REST trades API (days
built from the captured pages in tests/data/alpaca) and a real PostgreSQL: a two-day range
backfill through Dagster, resume after a 5xx mid-day, a re-run that stores nothing, rate
limits and bad input in a day's metadata, a symbol fixed to another feed."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import AlpacaResource, PostgresResource
from assets.tick_history import HistoryProgress, tick_history
from orchestration.checks import ASSET_CHECKS
from tests.support.fake_alpaca import FakeAlpaca, Print, tape_from_rest
from tests.support.loop_thread import serving

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
pytestmark = pytest.mark.timeout(120)

DAYS = (date(2024, 3, 4), date(2024, 3, 5))  # Monday, Tuesday (EST: 14:30-21:00 UTC)
PER_DAY = {"AAPL": 150, "BTC/USD": 60}


def template(captures: Path, name: str, symbol: str) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / name).read_text())["trades"][symbol][0]


def day_tape(captures: Path, day: date) -> list[Print]:
    """A day shaped like the captured trades: AAPL in the session, BTC/USD in the morning."""
    at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    stock = template(captures, "rest_stock_trades_multi.json", "AAPL")
    coin = template(captures, "rest_crypto_trades_multi.json", "BTC/USD")
    offset = (day - DAYS[0]).days * 100_000  # ids differ between days, as the venue's do
    return [
        *tape_from_rest({**stock, "i": stock["i"] + offset}, "AAPL", PER_DAY["AAPL"],
                        at + timedelta(hours=15), timedelta(seconds=1)),
        *tape_from_rest({**coin, "i": coin["i"] + offset}, "BTC/USD", PER_DAY["BTC/USD"],
                        at + timedelta(hours=10), timedelta(seconds=7)),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeAlpaca, captures: Path) -> FakeAlpaca:
    server.reset()
    server.tape = [p for day in DAYS for p in day_tape(captures, day)]
    server.page_size = 40  # several pages a day, and a short one before the end
    server.page_sizes = [13]
    return server


def materialize(
    url: str,
    fake: FakeAlpaca,
    instance: dg.DagsterInstance,
    days: tuple[date, ...],
    *,
    profiles: bool = False,
    feed: str = "iex",
) -> dg.ExecuteInProcessResult:
    selection: list[Any] = [tick_history]
    if profiles:
        selection += [candles_1m, session_profiles, *ASSET_CHECKS]
    return dg.materialize(
        selection,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat(),
        },
        run_config={"ops": {"tick_history": {"config": {"symbols": ["AAPL", "BTC/USD"]}}}},
        resources={
            "postgres": PostgresResource(database_url=url),
            "alpaca": AlpacaResource(
                data_url=fake.rest_url,
                api_key=fake.key,
                secret_key=fake.secret,
                feed=feed,
                attempts=3,
                backoff_s=0.01,
            ),
            "history_progress": HistoryProgress(),
        },
        raise_on_error=False,
    )


def stored(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select s.symbol, (t.ts at time zone 'UTC')::date, t.source, t.feed, count(*),"
            " count(distinct t.trade_id), sum(coalesce(t.side, 0))"
            " from ticks t join symbols s on s.id = t.symbol_id group by 1, 2, 3, 4 order by 1, 2"
        ).fetchall()


def test_two_day_range_backfill_fetches_stores_and_profiles(db_url: str, fake: FakeAlpaca) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(db_url, fake, instance, DAYS, profiles=True)
    assert result.success
    rows = stored(db_url)
    coin_sides = sum(1 if p.taker == "B" else -1 for p in fake.tape if p.crypto) // 2
    assert rows == [
        ("AAPL", DAYS[0], "backfill", "iex", 150, 150, 0),
        ("AAPL", DAYS[1], "backfill", "iex", 150, 150, 0),
        ("BTCUSD", DAYS[0], "backfill", "crypto_us", 60, 60, coin_sides),
        ("BTCUSD", DAYS[1], "backfill", "crypto_us", 60, 60, coin_sides),
    ]
    # each day asked its own window, the crypto pair under Alpaca's name, feed explicit
    stock_requests = [r for r in fake.rest_requests if r["path"] == "/v2/stocks/trades"]
    assert {r["start"][:10] for r in stock_requests} == {d.isoformat() for d in DAYS}
    assert all(r["feed"] == "iex" and r["limit"] == "10000" for r in stock_requests)
    assert any(r["symbols"] == "BTC/USD" for r in fake.rest_requests)
    keys = {
        (e.asset_key.to_user_string(), e.partition)
        for e in result.get_asset_materialization_events()
    }
    for day in (d.isoformat() for d in DAYS):
        assert {("tick_history", day), ("candles_1m", day), ("volume_profile", day)} <= keys
    # each partition's own numbers, as observations of it
    observed = {
        e.partition: e.event_specific_data.asset_observation.metadata  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert {k: v["trades_stored"].value for k, v in observed.items()} == {
        d.isoformat(): 210 for d in DAYS
    }
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with psycopg.connect(db_url) as conn:
        (candles,) = conn.execute(
            "select count(distinct (ts at time zone 'UTC')::date) from candles_1m"
        ).fetchone()
        (profiled,) = conn.execute("select count(distinct session_date) from naked_pocs").fetchone()
        (equity_feed,) = conn.execute(
            "select equity_feed from symbols where symbol = 'AAPL'"
        ).fetchone()
    assert candles == 2 and profiled == 2 and equity_feed == "iex"


def test_a_rerun_stores_nothing_and_asks_nothing_for_finished_days(
    db_url: str, fake: FakeAlpaca
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(db_url, fake, instance, DAYS).success
    before, fake.rest_requests = stored(db_url), []
    again = materialize(db_url, fake, instance, DAYS)
    assert again.success and stored(db_url) == before
    assert fake.rest_requests == []  # both days are complete: nothing left to ask
    (event,) = again.get_asset_materialization_events()[:1]
    assert event.step_materialization_data.materialization.metadata["trades_stored"].value == 0


def test_a_5xx_mid_day_fails_the_run_and_the_next_resumes(db_url: str, fake: FakeAlpaca) -> None:
    day = (DAYS[0],)
    fake.down_pages = {"53"}  # the third AAPL page (after 13 and 40) stays down: mid-day
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(db_url, fake, instance, day)
    assert not first.success
    partial = sum(r[4] for r in stored(db_url) if r[0] == "AAPL")
    assert 0 < partial < PER_DAY["AAPL"]
    with psycopg.connect(db_url) as conn:
        (resume,) = conn.execute(
            "select resume_from from tick_history_progress p join symbols s on s.id = p.symbol_id"
            " where s.symbol = 'AAPL' and not complete"
        ).fetchone()
    fake.down_pages, fake.rest_requests = set(), []
    second = materialize(db_url, fake, instance, day)
    assert second.success
    aapl = [r for r in stored(db_url) if r[0] == "AAPL"]
    assert aapl == [("AAPL", DAYS[0], "backfill", "iex", 150, 150, 0)]  # every print once
    stock = [r for r in fake.rest_requests if r["path"] == "/v2/stocks/trades"]
    assert datetime.fromisoformat(stock[0]["start"]) == resume  # from what is stored
    meta = second.get_asset_materialization_events()[
        0
    ].step_materialization_data.materialization.metadata
    assert json.loads(json.dumps(meta["resumed"].value)) == {"AAPL": resume.isoformat()}
    assert meta["duplicates"].value >= 1  # the resume point's print came again


def test_rate_limits_and_bad_input_are_in_the_days_metadata(
    db_url: str, fake: FakeAlpaca, captures: Path
) -> None:
    at = datetime(2024, 3, 4, 18, tzinfo=UTC)
    stock = template(captures, "rest_stock_trades_multi.json", "AAPL")
    fake.tape += [
        Print("AAPL", at, 0.0, 1, 9_000_001),  # a price of 0
        Print("AAPL", at + timedelta(seconds=1), -2.0, 1, 9_000_002),
        Print("AAPL", at + timedelta(seconds=2), stock["p"], 5, 9_000_003, update="canceled"),
    ]
    fake.answer_429, fake.rate_window_s = 1, 1.0
    result = materialize(db_url, fake, dg.DagsterInstance.ephemeral(), (DAYS[0],))
    assert result.success
    meta = result.get_asset_materialization_events()[
        0
    ].step_materialization_data.materialization.metadata
    assert meta["rejects"].value == {"non_positive_price": 2}
    assert meta["venue_flagged"].value == {"canceled": 1}
    assert meta["rate_limited"].value == 1 and meta["rate_limit_waits"].value >= 1
    assert meta["trades_stored"].value == 210 and meta["trades_received"].value == 213
    with psycopg.connect(db_url) as conn:
        (persisted,) = conn.execute(
            "select sum(count) from ingest_rejects where source = 'backfill'"
        ).fetchone()
    assert persisted == 2  # visible in `marketflow status` like ingest's


def test_a_symbol_fixed_to_another_feed_is_refused(db_url: str, fake: FakeAlpaca) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update symbols set equity_feed = 'sip' where symbol = 'AAPL'")
    result = materialize(db_url, fake, dg.DagsterInstance.ephemeral(), (DAYS[0],))
    assert result.success  # the other symbols are served
    assert [r[0] for r in stored(db_url)] == ["BTCUSD"]
    assert not any(r["path"] == "/v2/stocks/trades" for r in fake.rest_requests)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["symbols_served"].passed
    assert checks["symbols_served"].severity == dg.AssetCheckSeverity.WARN
    assert "sip" in checks["symbols_served"].metadata["refused"].value["AAPL"]
    assert checks["one_equity_feed_per_symbol"].passed
