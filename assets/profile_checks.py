"""The profile assets' checks: value area, profile volume against the ticks, CVD
continuity, and the symbols a run skipped. Each reads the partition window it runs for and
counts the offending rows in SQL (assets.check_queries)."""

import dagster as dg

from assets.check_queries import REL_TOL, SESSIONS_CTE, check_result, session_params
from assets.partitions import WRITE_FROM_TAG, daily_partitions, write_from_tag
from assets.profiles import (
    ORDER_FLOW,
    PROFILE_METRICS,
    SKIPPED_METADATA,
    VOLUME_PROFILE,
    latest_profile_metadata,
    profiled_seq,
)
from assets.resources import PostgresResource

VALUE_AREA_SQL = f"""
with metrics as (
    select pm.symbol_id, pm.horizon, pm.bucket, pm.session_date, pm.poc, pm.vah, pm.val,
           pm.total_volume, sy.row_size
    from profile_metrics as pm
    join symbols as sy on sy.id = pm.symbol_id
    where pm.bucket >= %(start)s and pm.bucket < %(end)s and pm.horizon in ('1m', 'session')
),
minute_rows as (
    -- every 1m profile against its own minute's bins
    select m.symbol_id, m.horizon, m.bucket, m.poc, m.val, m.vah, m.total_volume,
           coalesce(sum(vp.total_volume) filter (
               where vp.price_level::float8 between m.val - m.row_size / 2
                                                and m.vah + m.row_size / 2), 0) as in_va
    from metrics as m
    left join volume_profile as vp on vp.symbol_id = m.symbol_id and vp.bucket = m.bucket
    where m.horizon = '1m' and m.bucket >= %(since)s
    group by 1, 2, 3, 4, 5, 6, 7
),
final_sessions as (
    select distinct on (symbol_id, session_date) *
    from metrics where horizon = 'session'
    order by symbol_id, session_date, bucket desc
),
session_rows as (
    -- each session's complete (last) running profile against all the session's bins
    select m.symbol_id, m.horizon, m.bucket, m.poc, m.val, m.vah, m.total_volume,
           coalesce(sum(vp.total_volume) filter (
               where vp.price_level::float8 between m.val - m.row_size / 2
                                                and m.vah + m.row_size / 2), 0) as in_va
    from final_sessions as m
    left join volume_profile as vp
      on vp.symbol_id = m.symbol_id
     and vp.bucket >= m.session_date::timestamp at time zone 'UTC' and vp.bucket <= m.bucket
    group by 1, 2, 3, 4, 5, 6, 7
)
select symbol_id, horizon, bucket, poc, val, vah, total_volume, in_va
from (select * from minute_rows union all select * from session_rows) as checked
where not (val <= poc and poc <= vah)
   or in_va < 0.7 * total_volume - {REL_TOL} * greatest(1.0, total_volume)
order by 1, 2, 3
"""


@dg.asset_check(
    asset=PROFILE_METRICS,
    partitions_def=daily_partitions,
    description=(
        "Value area holds the POC and at least 70 % of the volume (every 1m profile and each "
        "session's complete profile)."
    ),
)
def value_area_holds_poc_and_70_percent(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    # a sensor run's 1m profiles from its write-from minute on (each session's complete
    # profile is always checked)
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    since = max(window.start, write_from) if write_from else window.start
    params = {"start": window.start, "end": window.end, "since": since}
    with postgres.connect(read_only=True) as conn:
        rows = conn.execute(VALUE_AREA_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "horizon", "bucket", "poc", "val", "vah", "total", "in_value_area"),
        "profiles whose value area misses the POC or 70 % of the volume",
    )


PROFILE_VOLUME_SQL = f"""
with {SESSIONS_CTE},
traded as (
    select t.symbol_id, s.open_ts, date_trunc('minute', t.ts) as minute, sum(t.size) as volume
    from ticks as t
    join sessions as s on t.symbol_id = s.symbol_id and t.ts >= s.open_ts and t.ts < s.close_ts
    where t.ts >= %(since)s and t.ts < %(end)s and t.seq <= %(max_seq)s
    group by 1, 2, 3
),
tick_volume as (
    select symbol_id, open_ts, sum(volume) as volume from traded group by 1, 2
),
fallback_volume as (
    -- bars of minutes without any tick enter the profile by the candle fallback
    select s.symbol_id, s.open_ts, sum(c.volume) as volume
    from sessions as s
    join candles_1m as c
      on c.symbol_id = s.symbol_id and c.ts >= s.open_ts and c.ts < s.close_ts
     and c.ts >= %(since)s
    left join traded as t on t.symbol_id = c.symbol_id and t.minute = c.ts
    where t.minute is null
    group by 1, 2
),
profile_volume as (
    select s.symbol_id, s.open_ts, sum(vp.total_volume) as volume,
           sum(vp.buy_volume + vp.sell_volume) as sided
    from sessions as s
    join volume_profile as vp
      on vp.symbol_id = s.symbol_id and vp.bucket >= s.open_ts and vp.bucket < s.close_ts
     and vp.bucket >= %(since)s
    group by 1, 2
),
compared as (
    select s.symbol_id, s.open_ts, coalesce(p.volume, 0) as volume,
           coalesce(t.volume, 0) + coalesce(f.volume, 0) as expected,
           coalesce(p.sided, 0) as sided
    from sessions as s
    left join profile_volume as p using (symbol_id, open_ts)
    left join tick_volume as t using (symbol_id, open_ts)
    left join fallback_volume as f using (symbol_id, open_ts)
)
select symbol_id, open_ts, volume, expected, sided
from compared
where abs(volume - expected) > {REL_TOL} * greatest(1.0, expected)
   or abs(sided - volume) > {REL_TOL} * greatest(1.0, volume)
order by 1, 2
"""


@dg.asset_check(
    asset=VOLUME_PROFILE,
    partitions_def=daily_partitions,
    description=(
        "Per symbol and session, profile volume equals the session's tick volume (plus bars "
        "of tick-less minutes), and buy + sell equals the total; a sensor run's minutes only."
    ),
)
def profile_volume_matches_ticks(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    # Ticks that arrived after the profile run read the window are not its business.
    max_seq = profiled_seq(context.instance, context.partition_key_range.end)
    # a sensor run (write_from) is checked from there on: its cost stays that of the new
    # ticks instead of a scan of the whole day every minute
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    with postgres.connect(read_only=True) as conn:
        params = {
            **session_params(conn, window.start, window.end),
            "max_seq": max_seq if max_seq is not None else 2**62,
            "since": max(window.start, write_from) if write_from else window.start,
        }
        rows = conn.execute(PROFILE_VOLUME_SQL, params).fetchall()
    return check_result(
        rows,
        ("symbol_id", "session_open", "profile", "ticks", "buy_plus_sell"),
        "sessions whose profile volume differs from their ticks",
    )


CVD_SQL = f"""
with rows as (
    select symbol_id, bucket, delta, cvd, cvd_total, buy_volume, sell_volume
    from order_flow where bucket >= %(start)s and bucket < %(end)s
    union all
    -- the last minute before the window: cvd_total continues from it
    select * from (
        select distinct on (symbol_id) symbol_id, bucket, delta, cvd, cvd_total, buy_volume,
               sell_volume
        from order_flow where bucket < %(start)s order by symbol_id, bucket desc
    ) as before
),
ordered as (
    select *,
           lag(cvd) over session_rows as prev_cvd,
           lag(bucket) over session_rows as prev_bucket,
           lag(cvd_total) over (partition by symbol_id order by bucket) as prev_total
    from rows
    window session_rows as (
        partition by symbol_id, (bucket at time zone 'UTC')::date order by bucket)
)
select symbol_id, bucket, delta, cvd, prev_cvd, cvd_total, prev_total
from ordered
where bucket >= %(start)s and (
    abs(delta - (buy_volume - sell_volume)) > {REL_TOL} * greatest(1.0, abs(delta))
    or abs(cvd - coalesce(prev_cvd, 0) - delta) > {REL_TOL} * greatest(1.0, abs(cvd))
    or abs(cvd_total - coalesce(prev_total, 0) - delta)
        > {REL_TOL} * greatest(1.0, abs(cvd_total))
    or (prev_bucket is not null and bucket - prev_bucket <> interval '1 minute')
)
order by 1, 2
"""


@dg.asset_check(
    asset=ORDER_FLOW,
    partitions_def=daily_partitions,
    description=(
        "CVD is continuous: each minute adds its delta (buy − sell) to the session CVD and to "
        "the never-resetting total, minute after minute without gaps inside a session."
    ),
)
def cvd_continuity(
    context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    with postgres.connect(read_only=True) as conn:
        rows = conn.execute(CVD_SQL, {"start": window.start, "end": window.end}).fetchall()
    return check_result(
        rows,
        ("symbol_id", "bucket", "delta", "cvd", "prev_cvd", "cvd_total", "prev_total"),
        "minutes where the CVD does not continue",
    )


@dg.asset_check(
    asset=VOLUME_PROFILE,
    partitions_def=daily_partitions,
    description=(
        "The last profile run computed every active symbol: a symbol whose session failed "
        "(absurd prints, an unknown market) was skipped, kept its older rows and is named here."
    ),
)
def profile_symbols_computed(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    metadata = latest_profile_metadata(context.instance, context.partition_key_range.end)
    value = metadata.get(SKIPPED_METADATA) if metadata is not None else None
    # MetadataValue.value is typed as every metadata kind; this one is the JSON dict written
    skipped = dict(value.value) if value is not None else {}  # type: ignore[arg-type]
    return dg.AssetCheckResult(
        passed=not skipped,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(skipped)} symbols skipped: {', '.join(sorted(skipped))}"
        if skipped
        else None,
        metadata={"failures": len(skipped), "skipped": dg.MetadataValue.json(skipped)},
    )


PROFILE_CHECKS = [
    value_area_holds_poc_and_70_percent,
    profile_volume_matches_ticks,
    cvd_continuity,
    profile_symbols_computed,
]
