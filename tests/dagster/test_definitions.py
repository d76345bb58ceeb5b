"""Definitions load, and the pure helpers behind partitions, schedules and dbt wiring."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import yaml

from tests.support.paths import REPO

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def test_definitions_load_everything() -> None:
    from orchestration.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "ticks",
        "candles_1m",
        "volume_profile",
        "profile_metrics",
        "order_flow",
        "footprint_imbalances",
        "session_vwap",
        "big_prints",
        "naked_pocs",
        "fct_order_flow_signals",
        "fct_session_summary",
    } <= keys
    # one partitions definition for Python and dbt assets alike
    from assets.partitions import daily_partitions

    for key in ("candles_1m", "volume_profile", "fct_session_summary", "stg_order_flow"):
        assert graph.get(dg.AssetKey(key)).partitions_def == daily_partitions
    assert graph.get(dg.AssetKey("ticks")).is_external
    # dbt sources are the Python assets: the marts sit downstream of the profile tables
    assert dg.AssetKey("order_flow") in graph.get(dg.AssetKey("stg_order_flow")).parent_keys
    assert defs.resolve_sensor_def("tick_stream_sensor").minimum_interval_seconds == 15
    # one trigger for the minute runs: the tick sensor; the marts and retention on schedules
    schedules = {s.name: s.cron_schedule for s in defs.schedules or []}  # type: ignore[union-attr]
    assert schedules == {
        "signals_schedule": "*/5 * * * *",
        "tick_archive_schedule": "17 2 * * *",
        "run_retention_schedule": "17 4 * * *",
    }
    minute = defs.resolve_job_def("minute_job")
    assert {k.to_user_string() for k in minute.asset_layer.selected_asset_keys} == {
        "candles_1m",
        "volume_profile",
        "profile_metrics",
        "order_flow",
        "footprint_imbalances",
        "session_vwap",
        "big_prints",
        "naked_pocs",
    }
    for name in ("minute_job", "signals_job"):
        job = defs.resolve_job_def(name)
        # the jobs take their partitioning from the assets they select: one day per run
        assert job.partitions_def == daily_partitions
        executor = job.executor_def
        # in-process unless a run's config (or MARKETFLOW_EXECUTOR) selects celery
        assert executor.name == "in_process_or_celery"
        assert executor.config_schema.default_value == {"in_process": {}}
        # the runs' console stays at INFO: no page of DEBUG step events a minute
        quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
        assert job.get_run_config_for_partition_key("2024-03-05") == quiet


def test_workspace_points_at_the_definitions_module() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert entry["python_module"]["module_name"] == "orchestration.definitions"
    assert entry["python_module"]["attribute"] == "defs"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (
            datetime(2024, 3, 4, tzinfo=UTC),
            datetime(2024, 3, 5, tzinfo=UTC),
            ("2024-03-04", "2024-03-05"),
        ),
        (
            datetime(2024, 3, 4, tzinfo=UTC),
            datetime(2024, 3, 7, tzinfo=UTC),
            ("2024-03-04", "2024-03-07"),
        ),
        (
            datetime(2024, 12, 31, tzinfo=UTC),
            datetime(2025, 1, 1, tzinfo=UTC),
            ("2024-12-31", "2025-01-01"),
        ),
    ],
)
def test_dbt_vars_follow_the_partition_window(start, end, expected) -> None:
    from assets.partitions import dbt_vars_for_window

    assert dbt_vars_for_window(start, end) == {"min_date": expected[0], "max_date": expected[1]}


def test_dbt_vars_match_dagster_windows_for_a_range() -> None:
    from assets.partitions import daily_partitions, dbt_vars_for_window, window_days

    window = daily_partitions.time_window_for_partition_key("2024-02-28")
    assert dbt_vars_for_window(window.start, window.end) == {
        "min_date": "2024-02-28",
        "max_date": "2024-02-29",
    }
    keys = dg.PartitionKeyRange("2024-02-27", "2024-03-01")
    start = daily_partitions.time_window_for_partition_key(keys.start).start
    end = daily_partitions.time_window_for_partition_key(keys.end).end
    assert window_days(start, end) == [date(2024, 2, 27) + timedelta(days=i) for i in range(4)]
    assert dbt_vars_for_window(start, end) == {"min_date": "2024-02-27", "max_date": "2024-03-02"}


def test_dbt_vars_reject_naive_or_empty_windows() -> None:
    from assets.partitions import dbt_vars_for_window

    with pytest.raises(ValueError):
        dbt_vars_for_window(datetime(2024, 3, 4), datetime(2024, 3, 5))
    moment = datetime(2024, 3, 4, tzinfo=UTC)
    with pytest.raises(ValueError):
        dbt_vars_for_window(moment, moment)


def test_partition_keys_are_utc_days() -> None:
    from assets.partitions import partition_key_for, partition_keys_between

    new_york = datetime(2024, 3, 4, 20, 30, tzinfo=UTC).astimezone()
    assert partition_key_for(new_york) == "2024-03-04"
    assert partition_key_for(datetime(2024, 3, 4, 23, 59, 59, tzinfo=UTC)) == "2024-03-04"
    with pytest.raises(ValueError):
        partition_key_for(datetime(2024, 3, 4))
    assert partition_keys_between(
        datetime(2024, 2, 28, 12, tzinfo=UTC), datetime(2024, 3, 1, 1, tzinfo=UTC)
    ) == ["2024-02-28", "2024-02-29", "2024-03-01"]


def test_closed_windows_and_minutes() -> None:
    from assets.market_data import closed_window
    from orchestration.schedules import closed_minute

    start, end = datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC)
    now = datetime(2024, 3, 4, 15, 30, 42, tzinfo=UTC)
    assert closed_window(start, end, now) == (start, datetime(2024, 3, 4, 15, 30, tzinfo=UTC))
    assert closed_window(start, end, end + timedelta(days=3)) == (start, end)
    assert closed_window(start, end, start - timedelta(days=1)) == (start, start)
    assert closed_minute(datetime(2024, 3, 5, 0, 0, 3, tzinfo=UTC)) == datetime(
        2024, 3, 4, 23, 59, tzinfo=UTC
    )


def test_markets_in_session_follow_the_calendars() -> None:
    from orchestration.schedules import markets_in_session

    markets = {"XNYS", "XLON", "24/7"}
    # 2024-03-04 15:00 UTC: New York and London both open
    assert markets_in_session(markets, datetime(2024, 3, 4, 15, tzinfo=UTC)) == [
        "24/7",
        "XLON",
        "XNYS",
    ]
    # Good Friday 2024: both exchanges closed, crypto trades
    assert markets_in_session(markets, datetime(2024, 3, 29, 15, tzinfo=UTC)) == ["24/7"]
    # a market no calendar knows is left out rather than failing the schedule
    assert markets_in_session({"XMARS", "24/7"}, datetime(2024, 3, 4, 15, tzinfo=UTC)) == ["24/7"]
    # after the New York close (21:00 UTC in winter)
    assert markets_in_session({"XNYS"}, datetime(2024, 3, 4, 21, tzinfo=UTC)) == []


def test_sensor_cursor_parsing() -> None:
    from orchestration.sensors import parse_cursor

    assert parse_cursor(None) == 0
    assert parse_cursor("") == 0
    assert parse_cursor("42") == 42
    assert parse_cursor("garbage") == 0
    assert parse_cursor("-5") == 0


def test_dbt_env_from_database_url_keeps_the_password_out_of_argv() -> None:
    from assets.dbt_marts import dbt_build_args, dbt_env

    env = dbt_env("postgresql+psycopg2://ana:s3cr%40t@db.example:6543/market")
    assert env == {
        "MARKETFLOW_DBT_HOST": "db.example",
        "MARKETFLOW_DBT_PORT": "6543",
        "MARKETFLOW_DBT_USER": "ana",
        "MARKETFLOW_DBT_DBNAME": "market",
        "MARKETFLOW_DBT_SCHEMA": "analytics",
        "MARKETFLOW_DBT_PASSWORD": "s3cr@t",
        # every dbt process: the same first day as the partitions, no usage statistics
        "MARKETFLOW_HISTORY_START": "2010-01-01",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    args = dbt_build_args(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))
    assert args[0] == "build" and "s3cr" not in " ".join(args)
    assert '"min_date": "2024-03-04"' in args[2]
