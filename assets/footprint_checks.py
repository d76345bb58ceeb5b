"""The footprint tables' checks: imbalances against the stored cells, the session VWAP and
the bar statistics against the ticks, big prints against their threshold and the ticks.
Each reads the partition window it runs for (a sensor run: its minutes from write-from on)
and counts the offending rows in SQL (assets.check_queries). A day whose ticks moved to the
tick archive (docs/retention.md) is checked for everything but its ticks."""

from datetime import datetime

import dagster as dg
import psycopg

from assets.check_queries import REL_TOL, SESSIONS_CTE, check_result, session_params
from assets.partitions import WRITE_FROM_TAG, daily_partitions, write_from_tag
from assets.profile_io import active_symbols
from assets.profiles import BIG_PRINTS, FOOTPRINT_IMBALANCES, ORDER_FLOW, SESSION_VWAP, profiled_seq
from assets.resources import PostgresResource
from storage.tick_archive import TickArchive

IMBALANCE_SQL = f"""
with config as (
    select * from unnest(%(ids)s::bigint[], %(ratios)s::float8[], %(minimums)s::float8[])
        as c (symbol_id, ratio, min_volume)
),
found as (
    select fi.*, sy.row_size, c.ratio, c.min_volume,
           cell.buy_volume as buys, cell.sell_volume as sells,
           coalesce(case fi.side when 'buy' then below.sell_volume else above.buy_volume end, 0)
               as diagonal
    from footprint_imbalances as fi
    join symbols as sy on sy.id = fi.symbol_id
    join config as c on c.symbol_id = fi.symbol_id
    left join volume_profile as cell
      on cell.symbol_id = fi.symbol_id and cell.bucket = fi.bucket and cell.price_level = fi.price
    left join volume_profile as below
      on below.symbol_id = fi.symbol_id and below.bucket = fi.bucket
     and below.price_level = fi.price - sy.row_size::numeric
    left join volume_profile as above
      on above.symbol_id = fi.symbol_id and above.bucket = fi.bucket
     and above.price_level = fi.price + sy.row_size::numeric
    where fi.bucket >= %(since)s and fi.bucket < %(end)s
)
select symbol_id, bucket, price, side, volume, opposite, diagonal
from found
where volume <> case side when 'buy' then buys else sells end
   or buys is null
   or abs(opposite - diagonal) > {REL_TOL} * greatest(1.0, diagonal)
   or not (volume > 0 and volume >= greatest(min_volume, ratio * opposite))
order by 1, 2, 3
"""


def _since(context: dg.AssetCheckExecutionContext) -> tuple[datetime, datetime, datetime]:
    """(window start, first minute checked, window end): a sensor run from write-from."""
    window = context.partition_time_window
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    since = max(window.start, write_from) if write_from else window.start
    # whole minutes: a minute's ticks are compared with its row
    return window.start, since.replace(second=0, microsecond=0), window.end


@dg.asset_check(
    asset=FOOTPRINT_IMBALANCES,
    partitions_def=daily_partitions,
    description=(
        "Every stored imbalance is one by the symbol's rule, read against the stored cells: "
        "its volume is the cell's buy (sell) volume, its opposite the diagonal cell's sell "
        "(buy) volume, and volume >= max(V_min, R × opposite)."
    ),
)
def imbalances_follow_the_rule(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    _start, since, end = _since(context)
    with postgres.connect(read_only=True) as conn:
        params = {**_ratios(conn), "since": since, "end": end}
        rows = conn.execute(IMBALANCE_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "bucket", "price", "side", "volume", "opposite", "diagonal"),
        "imbalances that break the rule or disagree with the cells",
    )


def _ratios(conn: psycopg.Connection) -> dict[str, list]:
    """Each active symbol's R and V_min (the defaults live in analytics.footprint_config);
    a symbol whose configuration is refused was skipped by the run and is not checked."""
    ids, ratios, minimums = [], [], []
    for symbol in active_symbols(conn):
        try:
            config = symbol.config
        except ValueError:
            continue
        ids.append(symbol.id)
        ratios.append(config.imbalance_ratio)
        minimums.append(config.imbalance_min_volume)
    return {"ids": ids, "ratios": ratios, "minimums": minimums}


VWAP_SQL = f"""
with {SESSIONS_CTE},
stored as (
    select v.*, s.open_ts,
           v.volume - coalesce(lag(v.volume) over (
               partition by v.symbol_id, s.open_ts order by v.bucket), 0) as added
    from session_vwap as v
    join sessions as s
      on v.symbol_id = s.symbol_id and v.bucket >= date_trunc('minute', s.open_ts)
     and v.bucket < s.close_ts
),
printed as (
    select t.symbol_id, date_trunc('minute', t.ts) as minute, sum(t.size) as volume,
           sum(t.size * t.price) as notional
    from ticks as t
    join sessions as s on t.symbol_id = s.symbol_id and t.ts >= s.open_ts and t.ts < s.close_ts
    where t.ts >= %(ticks_from)s and t.ts < %(end)s and t.seq <= %(max_seq)s
      and t.price > 0 and t.price < 'infinity'::float8
      and t.size > 0 and t.size < 'infinity'::float8
    group by 1, 2
),
compared as (
    select st.symbol_id, st.bucket, st.vwap, st.sd, st.volume, st.added,
           coalesce(p.volume, 0) as minute_volume,
           (st.bucket at time zone 'UTC')::date = any(%(archived)s::date[]) as archived,
           sum(p.notional) over upto / nullif(sum(p.volume) over upto, 0) as tick_vwap
    from stored as st
    left join printed as p on p.symbol_id = st.symbol_id and p.minute = st.bucket
    window upto as (partition by st.symbol_id, st.open_ts order by st.bucket)
)
select symbol_id, bucket, vwap, tick_vwap, sd, added, minute_volume
from compared
where bucket >= %(since)s and (
    sd < 0
    or (not archived and abs(added - minute_volume) > {REL_TOL} * greatest(1.0, minute_volume))
    -- the VWAP itself needs the session's ticks from its open: full runs only
    or (%(full)s and not archived
        and abs(vwap - tick_vwap) > {REL_TOL} * greatest(1.0, abs(tick_vwap)))
)
order by 1, 2
"""


@dg.asset_check(
    asset=SESSION_VWAP,
    partitions_def=daily_partitions,
    description=(
        "Each minute of the session VWAP adds exactly its ticks' volume and sd >= 0; in a "
        "full run the VWAP through each minute also equals Σ price·size / Σ size of the "
        "session's ticks so far (a sensor run reads only its own minutes' ticks)."
    ),
)
def session_vwap_matches_ticks(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    start, since, end = _since(context)
    max_seq = profiled_seq(context.instance, context.partition_key_range.end)
    with postgres.connect(read_only=True) as conn:
        params = {
            **session_params(conn, start, end),
            "since": since,
            "ticks_from": since,
            "full": since == start,
            "max_seq": max_seq if max_seq is not None else 2**62,
            "archived": TickArchive.configured().archived_in(start, end),
        }
        rows = conn.execute(VWAP_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "bucket", "vwap", "tick_vwap", "sd", "added", "minute_volume"),
        "minutes whose session VWAP disagrees with the ticks",
    )


BAR_STATS_SQL = f"""
select symbol_id, bucket, trade_count, delta, max_delta, min_delta, mean_trade_size,
       trade_size_sd
from order_flow
where bucket >= %(since)s and bucket < %(end)s and (
    (trade_count > 0) is distinct from (max_delta is not null)
    or (trade_count > 0) is distinct from (mean_trade_size is not null)
    or min_delta > max_delta
    or delta > max_delta + {REL_TOL} * greatest(1.0, abs(max_delta))
    or delta < min_delta - {REL_TOL} * greatest(1.0, abs(min_delta))
    or mean_trade_size <= 0
    or trade_size_sd < 0
    or trades is distinct from trade_count
)
order by 1, 2
"""


@dg.asset_check(
    asset=ORDER_FLOW,
    partitions_def=daily_partitions,
    description=(
        "Bar statistics: known exactly for minutes with prints, the minute's delta between "
        "its running delta's extremes, a positive mean print size and sd >= 0."
    ),
)
def bar_statistics_hold(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    _start, since, end = _since(context)
    with postgres.connect(read_only=True) as conn:
        rows = conn.execute(BAR_STATS_SQL, {"since": since, "end": end}).fetchall()
    return check_result(
        rows,
        ("symbol_id", "bucket", "trades", "delta", "max_delta", "min_delta", "mean", "sd"),
        "minutes whose bar statistics do not hold",
    )


BIG_PRINTS_SQL = """
select b.symbol_id, b.bucket, b.print_no, b.ts, b.price, b.size, b.threshold
from big_prints as b
where b.bucket >= %(since)s and b.bucket < %(end)s and (
    b.size < b.threshold
    or date_trunc('minute', b.ts) <> b.bucket
    or (
        not (b.bucket at time zone 'UTC')::date = any(%(archived)s::date[])
        and not exists (
            select 1 from ticks as t
            where t.symbol_id = b.symbol_id and t.ts = b.ts and t.price = b.price
              and t.size = b.size
        )
    )
)
order by 1, 2, 3
"""


@dg.asset_check(
    asset=BIG_PRINTS,
    partitions_def=daily_partitions,
    description="Every big print is a stored tick of its minute, at or above its threshold.",
)
def big_prints_are_big_ticks(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    start, since, end = _since(context)
    archived = TickArchive.configured().archived_in(start, end)
    with postgres.connect(read_only=True) as conn:
        params = {"since": since, "end": end, "archived": archived}
        rows = conn.execute(BIG_PRINTS_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "bucket", "print_no", "ts", "price", "size", "threshold"),
        "big prints below their threshold or without their tick",
    )


FOOTPRINT_CHECKS = [
    imbalances_follow_the_rule,
    session_vwap_matches_ticks,
    bar_statistics_hold,
    big_prints_are_big_ticks,
]
