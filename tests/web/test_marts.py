"""The watchlist reads the dbt mart ``watchlist_latest`` where it exists and the raw tables
otherwise: built by dbt on the same seeded morning, both give every symbol the same values."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from assets.dbt_marts import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env
from streaming.web.queries import Queries
from streaming.web.queries.market import WATCHLIST_RAW_SQL
from tests.support.web_seed import seed
from tests.support.web_served import serve

# what the watchlist page shows; both sources name them alike
SHOWN = (
    "symbol",
    "last_price",
    "previous_close",
    "price_change",
    "price_change_pct",
    "market_state",
    "state_confidence",
    "buy_pressure",
    "sell_pressure",
    "session_cvd",
    "session_poc",
    "session_vah",
    "session_val",
    "nearest_lvn",
    "last_signal_type",
    "last_signal_strategy",
    "last_signal_at",
    "timezone",
    "name",
)


def test_mart_and_raw_watchlists_agree(redis_url: str, db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    built = subprocess.run(
        [
            DBT_EXECUTABLE,
            "build",
            "--quiet",
            "--select",
            "+watchlist_latest",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
        ],
        env={**os.environ, **dbt_env(db_url)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:]
    with serve(redis_url, db_url) as web:
        import httpx

        from_mart = httpx.get(f"{web.base}/api/watchlist", timeout=30).json()
    raw = asyncio.run(Queries(db_url).db.fetch(WATCHLIST_RAW_SQL))
    assert from_mart["source"] == "watchlist_latest"
    mart_rows = {r["symbol"]: {k: r.get(k) for k in SHOWN} for r in from_mart["rows"]}
    raw_rows = {r["symbol"]: {k: r.get(k) for k in SHOWN} for r in raw}
    assert set(mart_rows) == set(raw_rows)
    for symbol, row in raw_rows.items():
        for key, value in row.items():
            got = mart_rows[symbol][key]
            if isinstance(value, float):
                assert got == pytest.approx(value), (symbol, key)
            else:
                assert got == value, (symbol, key)
