"""A backtest over days whose ticks moved to the Parquet archive fills exactly as it did
while PostgreSQL held them: entries at the first print, ambiguous candles decided by the
minute's prints (docs/retention.md, docs/backtests.md)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from backtest.run import Request, Result, run_backtest
from core.settings import get_settings
from storage.tick_archive import TickArchive
from storage.tick_archiver import archive_day, stored_days
from tests.dagster.test_assets import DAYS, RANGE_TAGS, load_days

STRATEGY = "archive sma"


@pytest.fixture
def history(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Three sessions of AAPL prints with their candles and profiles, and one strategy."""
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    load_days(db_url, per_session=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dg.materialize(
            [candles_1m, session_profiles],
            tags=RANGE_TAGS,
            resources={"postgres": PostgresResource(database_url=db_url)},
            instance=dg.DagsterInstance.ephemeral(),
        ).success
    with psycopg.connect(db_url, autocommit=True) as conn:
        definition = {"type": "price_above_sma", "period": 5, "symbol": "AAPL", "signal": "BUY"}
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, 0)",
            (STRATEGY, json.dumps(definition)),
        )
    yield db_url
    get_settings.cache_clear()


def backtest(url: str, ticks: bool = True) -> Result:
    request = Request(STRATEGY, date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]))
    if not ticks:
        request = Request(request.strategy, request.first_day, request.last_day, ticks=False)
    with psycopg.connect(url) as conn:
        return run_backtest(conn, request)


def test_a_backtest_over_archived_days_fills_as_before(history: str) -> None:
    before = backtest(history)
    assert len(before.trades) >= 3
    # the prints matter: without them the entries are the next candles' opens
    assert repr(backtest(history, ticks=False).trades) != repr(before.trades)

    archive = TickArchive.configured()
    for day in DAYS:
        assert archive_day(history, archive, date.fromisoformat(day)).action == "archived"
    with psycopg.connect(history) as conn:
        assert not {d.isoformat() for d in stored_days(conn)} & set(DAYS)

    after = backtest(history)
    assert repr(after.trades) == repr(before.trades)
    assert repr(after.metrics) == repr(before.metrics)
    assert [(s.ts, s.type) for s in after.signals] == [(s.ts, s.type) for s in before.signals]
