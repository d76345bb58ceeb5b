"""Market data: the `ticks` stream (external) and `candles_1m` reconciled from it.

Ingest writes ticks and builds candles live; Dagster does not own either process. `ticks` is
therefore an external asset observed by `tick_stream_sensor`, and `candles_1m` here is the
reconciliation pass that makes every closed minute agree with the ticks stored for it.
"""

from datetime import UTC, datetime

import dagster as dg

from core.contracts import Table
from orchestration.partitions import WRITE_FROM_TAG, daily_partitions, write_from_tag
from orchestration.resources import PostgresResource

TICKS = dg.AssetKey(Table.TICKS.value)

ticks = dg.AssetSpec(
    key=TICKS,
    description=(
        "Trade prints written by `marketflow ingest`/`replay` (table `ticks`, one PostgreSQL "
        "partition per UTC day). Observed by tick_stream_sensor: rows, lag, last tick time."
    ),
    group_name="market_data",
    kinds={"postgres"},
)

# One statement: candles of every closed minute of the window that has ticks, written only
# where they differ from what is stored, so a re-run touches no row and `updated_at` keeps
# the time of the last real correction. Ticks are ordered by (ts, seq): the ingest order
# breaks ties between prints of the same instant, as the live candle builder saw them.
# Volume/vwap compare with a relative tolerance: the live builder sums in another order.
RECONCILE_CANDLES_SQL = """
with agg as (
    select
        symbol_id,
        date_trunc('minute', ts) as minute,
        (array_agg(price order by ts, seq))[1] as open,
        max(price) as high,
        min(price) as low,
        (array_agg(price order by ts desc, seq desc))[1] as close,
        sum(size) as volume,
        count(*)::integer as trade_count,
        sum(price * size) / nullif(sum(size), 0) as vwap,
        min(ts) as first_ts,
        max(ts) as last_ts
    from ticks
    where ts >= %(start)s and ts < %(end)s
    group by symbol_id, date_trunc('minute', ts)
)
insert into candles_1m as c (symbol_id, ts, open, high, low, close, volume, trade_count,
                             vwap, first_ts, last_ts, source, updated_at)
select symbol_id, minute, open, high, low, close, volume, trade_count, vwap, first_ts,
       last_ts, 'reconciled', now()
from agg
on conflict (symbol_id, ts) do update set
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trade_count = excluded.trade_count, vwap = excluded.vwap,
    first_ts = excluded.first_ts, last_ts = excluded.last_ts, source = 'reconciled',
    updated_at = now()
where (c.open, c.high, c.low, c.close, c.trade_count)
        is distinct from (excluded.open, excluded.high, excluded.low, excluded.close,
                          excluded.trade_count)
    or abs(c.volume - excluded.volume) > 1e-9 * greatest(1.0, abs(excluded.volume))
    or (c.vwap is null) <> (excluded.vwap is null)
    or abs(c.vwap - excluded.vwap) > 1e-9 * greatest(1.0, abs(excluded.vwap))
"""


def closed_window(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The part of [start, end) made of minutes that have closed by `now`."""
    current_minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return start, max(start, min(end, current_minute))


@dg.asset(
    key=Table.CANDLES_1M.value,
    deps=[TICKS],
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
            written = conn.execute(RECONCILE_CANDLES_SQL, {"start": start, "end": end}).rowcount
    context.log.info("candles_1m %s..%s: %d minutes written", start, end, written)
    return dg.MaterializeResult(
        metadata={
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "minutes_written": written,
        }
    )
