"""Jobs the sensor and schedules launch; all on the in_process executor.

These runs are frequent and small: the default multiprocess executor spends 2–3 s per step
re-importing everything in a new process (STACK-NOTES), longer than the work itself.
"""

import dagster as dg

from assets.market_data import candles_1m
from assets.profiles import PROFILE_ASSETS
from orchestration.partitions import daily_partitions

# the tick-driven run (tick_stream_sensor): profiles, order flow and their checks
profile_job = dg.define_asset_job(
    "profile_job",
    selection=dg.AssetSelection.assets(*PROFILE_ASSETS),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Volume profile, profile metrics and order flow of one partition.",
)

# the clock-driven run (minute_schedule): candles of closed minutes, plus the profiles when
# the sensor has fallen behind
minute_job = dg.define_asset_job(
    "minute_job",
    selection=dg.AssetSelection.assets(candles_1m, *PROFILE_ASSETS),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Candle reconciliation of closed minutes (and profiles when they lag).",
)

# the dbt signal marts of one partition
signals_job = dg.define_asset_job(
    "signals_job",
    selection=dg.AssetSelection.groups("signals"),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="dbt staging views and signal marts for one partition.",
)
