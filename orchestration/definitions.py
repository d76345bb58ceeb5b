"""The one Definitions of marketflow (workspace.yaml → `orchestration.definitions`).

Importing it is cheap: no database is reached (resources resolve their URL on first use)
and no dbt process starts — the dbt manifest was prepared at install time and is only read
(assets/dbt_project.py).
"""

import dagster as dg

from assets.backtest import backtest_assets
from assets.dbt_marts import RAW_SOURCES, dbt_resource, signal_marts
from assets.maintenance import tick_archive
from assets.market_data import candles_1m, ticks
from assets.partitions import daily_partitions
from assets.profiles import session_profiles
from assets.resources import AlpacaResource, PostgresResource
from assets.tick_history import HistoryProgress, tick_history
from orchestration.checks import ASSET_CHECKS
from orchestration.jobs import minute_job, signals_job, tick_archive_job
from orchestration.run_retention import run_retention_job, run_retention_schedule
from orchestration.schedules import signals_schedule, tick_archive_schedule
from orchestration.sensors import tick_stream_sensor

defs = dg.Definitions(
    assets=[
        ticks,
        tick_history,
        candles_1m,
        session_profiles,
        backtest_assets(daily_partitions),
        signal_marts,
        *RAW_SOURCES,
        tick_archive,
    ],
    asset_checks=ASSET_CHECKS,
    jobs=[minute_job, signals_job, tick_archive_job, run_retention_job],
    schedules=[signals_schedule, tick_archive_schedule, run_retention_schedule],
    sensors=[tick_stream_sensor],
    resources={
        "postgres": PostgresResource(),
        "dbt": dbt_resource(),
        "alpaca": AlpacaResource(),
        "history_progress": HistoryProgress(),
    },
)
