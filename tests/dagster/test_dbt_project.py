"""The dbt project against a real PostgreSQL: one `dbt build` through Dagster for a
three-day range (session fixture), then a one-day re-run; the marts' rows are checked
against the tables they come from. Also: sqlfluff is clean."""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from analytics.sessions import session_bounds
from assets.dbt_marts import dbt_resource, signal_marts
from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks
from core.service_urls import with_database
from tests.support.paths import REPO

pytestmark = pytest.mark.integration  # dbt runs, sqlfluff over the models

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAYS = ("2024-03-04", "2024-03-05", "2024-03-06")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


def _load(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        for n, day in enumerate(DAYS):
            open_, close = session_bounds("XNYS", day)
            start, end = session_bounds("24/7", day)
            ticks = pd.concat(
                [
                    make_ticks([ids["AAPL"], ids["MSFT"]], open_, close, 300, seed=n),
                    make_ticks([ids["ETHUSDT"]], start, end, 300, seed=50 + n),
                ],
                ignore_index=True,
            )
            ticks["trade_id"] = [f"d{n}-{i}" for i in range(len(ticks))]
            insert_ticks(conn, ticks)


def _marts(url: str, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [signal_marts],
        instance=instance,
        resources={"postgres": PostgresResource(database_url=url), "dbt": dbt_resource()},
        **kwargs,
    )


@pytest.fixture(scope="session")
def dbt_db(pg_admin_url: str, migrated_template: str) -> Iterator[tuple[str, dict]]:
    """Three days of profiles, then one real `dbt build` of the range (run once)."""
    name = f"t_dbt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(migrated_template)
            )
        )
    url = with_database(pg_admin_url, name)
    _load(url)
    instance = dg.DagsterInstance.ephemeral()
    profiles = dg.materialize(
        [candles_1m, session_profiles],
        instance=instance,
        resources={"postgres": PostgresResource(database_url=url)},
        tags=RANGE_TAGS,
    )
    assert profiles.success
    result = _marts(url, instance, tags=RANGE_TAGS)
    yield url, {"result": result, "instance": instance}
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def _rows(url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_dbt_build_materialises_every_model_and_passes_its_tests(dbt_db) -> None:
    _url, state = dbt_db
    result: dg.ExecuteInProcessResult = state["result"]
    assert result.success
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert {
        "stg_symbols",
        "stg_candles_1m",
        "stg_order_flow",
        "stg_profile_metrics",
        "stg_naked_pocs",
        "fct_order_flow_signals",
        "fct_session_summary",
    } <= materialized
    partitions = {
        m.partition
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == "fct_session_summary"
    }
    assert partitions == set(DAYS)
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 20  # the dbt data tests, as Dagster asset checks
    assert [c.check_name for c in checks if not c.passed] == []


def test_order_flow_signals_cover_every_minute_of_order_flow(dbt_db) -> None:
    url, _ = dbt_db
    ((flow,),) = _rows(url, "select count(*) from order_flow")
    ((signals,),) = _rows(url, "select count(*) from analytics.fct_order_flow_signals")
    assert signals == flow > 0
    # the value-area position agrees with the session profile of the same minute
    mismatches = _rows(
        url,
        """
        select count(*) from analytics.fct_order_flow_signals as s
        join profile_metrics as pm
          on pm.symbol_id = s.symbol_id and pm.bucket = s.bucket and pm.horizon = 'session'
        join candles_1m as c on c.symbol_id = s.symbol_id and c.ts = s.bucket
        where s.is_in_value_area <> (c.close between pm.val and pm.vah)
           or abs(s.price_vs_poc_pct - (c.close - pm.poc) / pm.poc * 100) > 1e-9
        """,
    )
    assert mismatches == [(0,)]
    positions = {
        r[0]
        for r in _rows(
            url, "select distinct value_area_position from analytics.fct_order_flow_signals"
        )
    }
    assert positions <= {"above", "inside", "below", None}


def test_session_summary_matches_the_final_session_profile(dbt_db) -> None:
    url, _ = dbt_db
    summary = _rows(
        url,
        "select symbol, session_date::text, poc, vah, val, session_delta, closing_cvd, "
        "naked_poc_count from analytics.fct_session_summary order by symbol, session_date",
    )
    # AAPL, MSFT and ETHUSDT traded on each of the three days
    assert [(s, d) for s, d, *_ in summary] == [
        (s, d) for s in ("AAPL", "ETHUSDT", "MSFT") for d in DAYS
    ]
    final = dict(
        ((s, d), poc)
        for s, d, poc in _rows(
            url,
            "select distinct on (symbol_id, session_date) sy.symbol, session_date::text, poc "
            "from profile_metrics join symbols as sy on sy.id = symbol_id "
            "where horizon = 'session' order by symbol_id, session_date, bucket desc",
        )
    )
    for symbol, day, poc, vah, val, delta, closing_cvd, naked in summary:
        assert poc == final[(symbol, day)]
        assert val <= poc <= vah
        assert delta == pytest.approx(closing_cvd)
        assert 0 <= naked <= DAYS.index(day)


def test_rebuilding_one_partition_replaces_only_its_window(dbt_db) -> None:
    url, state = dbt_db
    query = (
        "select session_date::text, count(*), sum(delta) from analytics.fct_order_flow_signals "
        "group by 1 order by 1"
    )
    before = _rows(url, query)
    # damage the middle day's mart rows, then rebuild that partition alone
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "update analytics.fct_order_flow_signals set delta = delta + 1 where session_date = %s",
            (DAYS[1],),
        )
    result = _marts(url, state["instance"], partition_key=DAYS[1])
    assert result.success
    assert _rows(url, query) == before


def test_sqlfluff_is_clean() -> None:
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("sqlfluff")),
            "lint",
            "dbt_project/models",
            "dbt_project/macros",
            "dbt_project/tests",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
