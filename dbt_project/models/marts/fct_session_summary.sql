{{
    config(
        unique_key=['symbol_id', 'session_date'],
        pre_hook="{{ delete_partition_window('session_date') }}"
    )
}}

-- one row per symbol and session: the session's final profile (POC, value area), its
-- order flow, its price range, and the earlier sessions' POCs still untouched at its close

with session_profile as (
    select * from {{ ref('stg_profile_metrics') }}
    where
        horizon = 'session'
        and session_date >= {{ window_start() }}
        and session_date < {{ window_end() }}
),

final_profile as (
    select distinct on (symbol_id, session_date)
        symbol_id,
        session_date,
        poc,
        vah,
        val,
        total_volume
    from session_profile
    order by symbol_id asc, session_date asc, bucket desc
),

order_flow as (
    select * from {{ ref('stg_order_flow') }}
    where
        bucket_date >= {{ window_start() }}
        and bucket_date < {{ window_end() }}
),

candles as (
    select * from {{ ref('stg_candles_1m') }}
    where
        bucket_date >= {{ window_start() }}
        and bucket_date < {{ window_end() }}
),

session_flow as (
    select
        order_flow.symbol_id,
        order_flow.bucket_date as session_date,
        min(order_flow.bucket) as first_bucket,
        max(order_flow.bucket) as last_bucket,
        sum(order_flow.delta) as session_delta,
        sum(order_flow.buy_volume) as buy_volume,
        sum(order_flow.sell_volume) as sell_volume,
        sum(order_flow.trade_count) as trade_count,
        min(candles.low_price) as low_price,
        max(candles.high_price) as high_price
    from order_flow
    left join candles
        on
            order_flow.symbol_id = candles.symbol_id
            and order_flow.bucket = candles.bucket
    group by order_flow.symbol_id, order_flow.bucket_date
),

closing as (
    select distinct on (order_flow.symbol_id, order_flow.bucket_date)
        order_flow.symbol_id,
        order_flow.bucket_date as session_date,
        order_flow.cvd as closing_cvd,
        candles.close_price
    from order_flow
    left join candles
        on
            order_flow.symbol_id = candles.symbol_id
            and order_flow.bucket = candles.bucket
    order by order_flow.symbol_id asc, order_flow.bucket_date asc, order_flow.bucket desc
),

naked_pocs as (
    select * from {{ ref('stg_naked_pocs') }}
),

sessions as (
    select
        final_profile.symbol_id,
        final_profile.session_date,
        final_profile.poc,
        final_profile.vah,
        final_profile.val,
        final_profile.total_volume,
        session_flow.session_delta,
        session_flow.buy_volume,
        session_flow.sell_volume,
        session_flow.trade_count,
        session_flow.low_price,
        session_flow.high_price,
        session_flow.first_bucket,
        session_flow.last_bucket,
        closing.closing_cvd,
        closing.close_price
    from final_profile
    left join session_flow
        on
            final_profile.symbol_id = session_flow.symbol_id
            and final_profile.session_date = session_flow.session_date
    left join closing
        on
            final_profile.symbol_id = closing.symbol_id
            and final_profile.session_date = closing.session_date
),

-- an earlier session's POC is naked at this session's close when price had not traded
-- through it by the end of this session's last minute
open_naked_pocs as (
    select
        sessions.symbol_id,
        sessions.session_date,
        count(naked_pocs.poc) as naked_poc_count,
        max(naked_pocs.poc) filter (
            where naked_pocs.poc < sessions.close_price
        ) as nearest_naked_poc_below,
        min(naked_pocs.poc) filter (
            where naked_pocs.poc > sessions.close_price
        ) as nearest_naked_poc_above
    from sessions
    inner join naked_pocs
        on
            sessions.symbol_id = naked_pocs.symbol_id
            and sessions.session_date > naked_pocs.session_date
            and (
                naked_pocs.touched_at is null
                or naked_pocs.touched_at >= sessions.last_bucket + interval '1 minute'
            )
    group by sessions.symbol_id, sessions.session_date
),

final as (
    select
        sessions.symbol_id,
        symbols.symbol,
        sessions.session_date,
        sessions.poc,
        sessions.vah,
        sessions.val,
        sessions.total_volume,
        sessions.buy_volume,
        sessions.sell_volume,
        sessions.session_delta,
        sessions.closing_cvd,
        sessions.trade_count,
        sessions.low_price,
        sessions.high_price,
        sessions.close_price,
        sessions.first_bucket,
        sessions.last_bucket,
        open_naked_pocs.nearest_naked_poc_below,
        open_naked_pocs.nearest_naked_poc_above,
        coalesce(open_naked_pocs.naked_poc_count, 0) as naked_poc_count
    from sessions
    inner join {{ ref('stg_symbols') }} as symbols
        on sessions.symbol_id = symbols.symbol_id
    left join open_naked_pocs
        on
            sessions.symbol_id = open_naked_pocs.symbol_id
            and sessions.session_date = open_naked_pocs.session_date
)

select * from final
