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

# the tick-driven run (tick_stream_sensor): profiles, order flow and their checks
profile_job = dg.define_asset_job(
    "profile_job",
    selection=dg.AssetSelection.assets(*PROFILE_ASSETS),
    executor_def=EXECUTOR,
    description="Volume profile, profile metrics and order flow of one partition.",
)

# the clock-driven run (minute_schedule): candles of closed minutes, plus the profiles when
# the sensor has fallen behind
minute_job = dg.define_asset_job(
    "minute_job",
    selection=dg.AssetSelection.assets(candles_1m, *PROFILE_ASSETS),
    executor_def=EXECUTOR,
    description="Candle reconciliation of closed minutes (and profiles when they lag).",
)

# the dbt signal marts of one partition
signals_job = dg.define_asset_job(
    "signals_job",
    selection=dg.AssetSelection.groups("signals"),
    executor_def=EXECUTOR,
    description="dbt staging views and signal marts for one partition.",
)

# the daily maintenance run (tick_archive_schedule): tick days past the retention to Parquet
tick_archive_job = dg.define_asset_job(
    "tick_archive_job",
    selection=dg.AssetSelection.assets(TICK_ARCHIVE),
    executor_def=EXECUTOR,
    description="Tick days older than TICK_RETENTION_DAYS to the Parquet archive.",
)
