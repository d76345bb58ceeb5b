"""Asset checks: pass on what the assets wrote, fail on each kind of broken data."""

from __future__ import annotations

import warnings

import dagster as dg
import psycopg
import pytest

from analytics.sessions import session_bounds
from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks
from orchestration.checks import ASSET_CHECKS

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = "2024-03-04"

checks_job = dg.define_asset_job(
    "checks_only",
    selection=dg.AssetSelection.checks(*ASSET_CHECKS),
)


def run_checks(url: str, instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    defs = dg.Definitions(
        assets=[candles_1m, session_profiles],
        asset_checks=ASSET_CHECKS,
        jobs=[checks_job],
        resources={"postgres": PostgresResource(database_url=url)},
    )
    # a check-only job has no asset to validate `partition_key` against: pass the partition
    # as a one-day range, which the checks read through partition_time_window all the same
    result = defs.resolve_job_def("checks_only").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAY,
            "dagster/asset_partition_range_end": DAY,
        },
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def materialized(db_url: str) -> tuple[str, dg.DagsterInstance]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = [
            int(r[0])
            for r in conn.execute(
                "select id from symbols where symbol in ('AAPL', 'ETHUSDT') order by id"
            )
        ]
        open_, close = session_bounds("XNYS", DAY)
        ticks = make_ticks(ids, open_, close, 400, seed=3)
        insert_ticks(conn, ticks)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [candles_1m, session_profiles, *ASSET_CHECKS],
        partition_key=DAY,
        instance=instance,
        resources={"postgres": PostgresResource(database_url=db_url)},
    )
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "candles_cover_traded_minutes": True,
        "value_area_holds_poc_and_70_percent": True,
        "profile_volume_matches_ticks": True,
        "cvd_continuity": True,
        "profile_symbols_computed": True,
        "imbalances_follow_the_rule": True,
        "session_vwap_matches_ticks": True,
        "bar_statistics_hold": True,
        "big_prints_are_big_ticks": True,
    }
    return db_url, instance


def _break(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(statement).rowcount > 0


def test_checks_pass_again_on_untouched_data(materialized) -> None:
    url, instance = materialized
    assert all(e.passed for e in run_checks(url, instance).values())


@pytest.mark.parametrize(
    ("check", "statement"),
    [
        (
            "candles_cover_traded_minutes",
            "delete from candles_1m where ts = (select min(ts) + interval '10 minutes' "
            "from candles_1m)",
        ),
        (
            "candles_cover_traded_minutes",
            "update candles_1m set trade_count = trade_count + 1 where ts = (select max(ts) "
            "from candles_1m)",
        ),
        (
            "value_area_holds_poc_and_70_percent",
            "update profile_metrics set vah = poc - 0.01, val = poc - 0.02 "
            "where horizon = '1m' and bucket = (select min(bucket) from profile_metrics)",
        ),
        (
            "value_area_holds_poc_and_70_percent",
            # a value area of the POC bin alone cannot hold 70 % of a whole session
            "update profile_metrics set vah = poc, val = poc where horizon = 'session' "
            "and bucket = (select max(bucket) from profile_metrics)",
        ),
        (
            "profile_volume_matches_ticks",
            "delete from volume_profile where bucket = (select min(bucket) from volume_profile)",
        ),
        (
            "profile_volume_matches_ticks",
            "update volume_profile set buy_volume = buy_volume + 1 "
            "where bucket = (select max(bucket) from volume_profile)",
        ),
        (
            "cvd_continuity",
            "update order_flow set cvd = cvd + 5 where bucket = (select min(bucket) "
            "+ interval '3 minutes' from order_flow)",
        ),
        (
            "cvd_continuity",
            "delete from order_flow where bucket = (select min(bucket) + interval '7 minutes' "
            "from order_flow)",
        ),
        (
            "imbalances_follow_the_rule",
            "update footprint_imbalances set volume = volume * 0.5 "
            "where bucket = (select max(bucket) from footprint_imbalances)",
        ),
        (
            "imbalances_follow_the_rule",
            # an imbalance whose diagonal cell says otherwise
            "update footprint_imbalances set opposite = opposite + 1 "
            "where bucket = (select min(bucket) from footprint_imbalances)",
        ),
        (
            "session_vwap_matches_ticks",
            "update session_vwap set vwap = vwap + 0.01 "
            "where bucket = (select max(bucket) from session_vwap)",
        ),
        (
            "session_vwap_matches_ticks",
            "update session_vwap set volume = volume + 1 "
            "where bucket = (select min(bucket) + interval '5 minutes' from session_vwap)",
        ),
        (
            "bar_statistics_hold",
            "update order_flow set max_delta = delta - 1 "
            "where bucket = (select min(bucket) from order_flow where trade_count > 0)",
        ),
        (
            "bar_statistics_hold",
            "update order_flow set mean_trade_size = null "
            "where bucket = (select max(bucket) from order_flow where trade_count > 0)",
        ),
        (
            "big_prints_are_big_ticks",
            # a print below its threshold, and no such tick
            "insert into big_prints (symbol_id, bucket, print_no, ts, price, size, side, "
            "threshold) select symbol_id, bucket, 0, bucket, 1.0, 1.0, 'buy', 5.0 "
            "from order_flow where trade_count > 0 limit 1",
        ),
    ],
)
def test_each_check_fails_on_broken_data(materialized, check: str, statement: str) -> None:
    url, instance = materialized
    _break(url, statement)
    results = run_checks(url, instance)
    assert not results[check].passed
    assert results[check].severity == dg.AssetCheckSeverity.ERROR
    assert results[check].metadata["failures"].value >= 1
    # the others are unaffected by this particular damage
    others = {name for name, e in results.items() if not e.passed} - {check}
    # (imbalances are read against the cells)
    assert others <= {
        "cvd_continuity",
        "value_area_holds_poc_and_70_percent",
        "imbalances_follow_the_rule",
    }


def test_profile_check_ignores_ticks_newer_than_the_run(materialized) -> None:
    """Prints that arrive after the profile run read the window are the next run's business."""
    url, instance = materialized
    with psycopg.connect(url, autocommit=True) as conn:
        aapl = int(conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0])
        open_, close = session_bounds("XNYS", DAY)
        late = make_ticks([aapl], open_, close, 5, seed=99)
        late["trade_id"] = [f"late-{i}" for i in range(len(late))]
        insert_ticks(conn, late)
    results = run_checks(url, instance)
    assert results["profile_volume_matches_ticks"].passed
    # candles do see them: reconciliation has not run yet for these prints
    assert not results["candles_cover_traded_minutes"].passed
