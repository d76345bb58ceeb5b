"""Jobs the sensor and schedules launch; in process unless configured for celery.

These runs are frequent and small: the default multiprocess executor spends 2–3 s per step
re-importing everything in a new process, longer than the work itself. So the executor is
in_process by default, or celery workers when a run's config or MARKETFLOW_EXECUTOR says so
(orchestration/executors.py, docs/scale-out.md).
"""

import dagster as dg

from assets.maintenance import TICK_ARCHIVE
from assets.market_data import candles_1m
from assets.profiles import PROFILE_ASSETS
from orchestration.executors import configured_executor

EXECUTOR = configured_executor()
# The runs' console (what `marketflow up` prints for the daemon) at INFO: Dagster writes each
# step's structured events at DEBUG, about sixty lines a run, once a minute; they stay in the
# event log and the UI. A run's own config (the Launchpad) replaces this default.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

# the tick-driven minute run (tick_stream_sensor): candles of the closed minutes from the
# run's write_from, then profiles, order flow and their checks, resumed from stored state
minute_job = dg.define_asset_job(
    "minute_job",
    selection=dg.AssetSelection.assets(candles_1m, *PROFILE_ASSETS),
    executor_def=EXECUTOR,
    config=QUIET_CONSOLE,
    description="Candles reconciled, then volume profile, metrics and order flow of one day.",
)

# the dbt signal marts of one partition
signals_job = dg.define_asset_job(
    "signals_job",
    selection=dg.AssetSelection.groups("signals"),
    executor_def=EXECUTOR,
    config=QUIET_CONSOLE,
    description="dbt staging views and signal marts for one partition.",
)

# the daily maintenance run (tick_archive_schedule): tick days past the retention to Parquet
tick_archive_job = dg.define_asset_job(
    "tick_archive_job",
    selection=dg.AssetSelection.assets(TICK_ARCHIVE),
    executor_def=EXECUTOR,
    description="Tick days older than TICK_RETENTION_DAYS to the Parquet archive.",
)
