"""Market data: the `ticks` stream (external) and `candles_1m` reconciled from it.

Ingest writes ticks and builds candles live; Dagster does not own either process. `ticks` is
therefore an external asset whose progress `tick_stream_sensor` follows, and `candles_1m`
here is the reconciliation pass that makes every closed minute agree with the ticks stored
for it.
"""

from datetime import UTC, datetime

import dagster as dg

from assets.check_queries import REL_TOL, SESSIONS_CTE, check_result, session_params
from assets.partitions import WRITE_FROM_TAG, daily_partitions, write_from_tag
from assets.resources import PostgresResource
from core.contracts import Table
from storage.candle_writes import rebuild_from_ticks

TICKS = dg.AssetKey(Table.TICKS.value)
# the history backfill (assets/tick_history.py) writes the same table for past days
TICK_HISTORY = dg.AssetKey("tick_history")

ticks = dg.AssetSpec(
    key=TICKS,
    description=(
        "Trade prints written by `marketflow ingest`/`replay` (table `ticks`, one PostgreSQL "
        "partition per UTC day). tick_stream_sensor follows its sequence and requests the "
        "minute runs; each profile run records the newest sequence it read (max_seq)."
    ),
    group_name="market_data",
    kinds={"postgres"},
)


def closed_window(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The part of [start, end) made of minutes that have closed by `now`."""
    current_minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return start, max(start, min(end, current_minute))


@dg.asset(
    key=Table.CANDLES_1M.value,
    deps=[TICKS, TICK_HISTORY],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="market_data",
    kinds={"postgres"},
    description=(
        "One-minute OHLCV bars; every closed minute of the window that has ticks is rebuilt "
        "from them and written where it differs (fills minutes the stream missed or got wrong). "
        "Minutes without ticks (bars from bar-only providers) are left as they are."
    ),
)
def candles_1m(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:
    window = context.partition_time_window
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    first = max(window.start, write_from) if write_from else window.start
    start, end = closed_window(first, window.end, datetime.now(UTC))
    written = 0
    if end > start:
        with postgres.connect() as conn:
            written = rebuild_from_ticks(conn, start, end)
    context.log.info("candles_1m %s..%s: %d minutes written", start, end, written)
    return dg.MaterializeResult(
        metadata={
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "minutes_written": written,
        }
    )


MISSING_CANDLES_SQL = f"""
with {SESSIONS_CTE},
traded as (
    select t.symbol_id, date_trunc('minute', t.ts) as minute, sum(t.size) as volume,
           count(*) as trades
    from ticks as t
    join sessions as s on t.symbol_id = s.symbol_id and t.ts >= s.open_ts and t.ts < s.close_ts
    where t.ts >= %(start)s and t.ts < %(closed)s
    group by 1, 2
)
select traded.symbol_id, traded.minute, traded.trades, c.trade_count
from traded
left join candles_1m as c on c.symbol_id = traded.symbol_id and c.ts = traded.minute
where c.ts is null
   or c.trade_count <> traded.trades
   or abs(c.volume - traded.volume) > {REL_TOL} * greatest(1.0, traded.volume)
order by 1, 2
"""


@dg.asset_check(
    asset=candles_1m,
    partitions_def=daily_partitions,
    description="Every closed session minute with trades has a candle holding those trades.",
)
def candles_cover_traded_minutes(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    closed = min(window.end, datetime.now(UTC).replace(second=0, microsecond=0))
    # a run that reconciled only its last minutes (write_from) is checked on those minutes
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    with postgres.connect(read_only=True) as conn:
        params = {**session_params(conn, window.start, window.end), "closed": closed}
        if write_from is not None:
            params["start"] = max(window.start, write_from)
        rows = conn.execute(MISSING_CANDLES_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "minute", "trades", "candle_trades"),
        "traded minutes without a matching candle",
    )


MARKET_DATA_CHECKS = [candles_cover_traded_minutes]
