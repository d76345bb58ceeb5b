{{
    config(
        unique_key=['symbol_id', 'bucket'],
        pre_hook="{{ delete_partition_window('session_date') }}"
    )
}}

-- one row per symbol and minute of order flow: where price stands against the running
-- session profile, and the aggression inputs the engine scores (docs/semantics.md)

with order_flow as (
    select * from {{ ref('stg_order_flow') }}
    where
        bucket_date >= {{ window_start() }}
        and bucket_date < {{ window_end() }}
),

session_profile as (
    select * from {{ ref('stg_profile_metrics') }}
    where
        horizon = 'session'
        and session_date >= {{ window_start() }}
        and session_date < {{ window_end() }}
),

candles as (
    select * from {{ ref('stg_candles_1m') }}
    where
        bucket_date >= {{ window_start() }}
        and bucket_date < {{ window_end() }}
),

symbols as (
    select * from {{ ref('stg_symbols') }}
),

joined as (
    select
        order_flow.symbol_id,
        symbols.symbol,
        order_flow.bucket,
        candles.close_price,
        candles.volume as candle_volume,
        order_flow.delta,
        order_flow.cvd,
        order_flow.cvd_total,
        order_flow.buy_volume,
        order_flow.sell_volume,
        order_flow.buy_pressure,
        order_flow.sell_pressure,
        order_flow.trade_count,
        session_profile.poc as session_poc,
        session_profile.vah as session_vah,
        session_profile.val as session_val,
        -- every supported session lies inside one UTC day (docs/semantics.md)
        coalesce(session_profile.session_date, order_flow.bucket_date) as session_date
    from order_flow
    inner join symbols
        on order_flow.symbol_id = symbols.symbol_id
    left join candles
        on
            order_flow.symbol_id = candles.symbol_id
            and order_flow.bucket = candles.bucket
    left join session_profile
        on
            order_flow.symbol_id = session_profile.symbol_id
            and order_flow.bucket = session_profile.bucket
),

signals as (
    select
        *,
        case
            when session_poc > 0 and close_price is not null
                then (close_price - session_poc) / session_poc * 100
        end as price_vs_poc_pct,
        case
            when close_price is null or session_vah is null then null
            when close_price > session_vah then 'above'
            when close_price < session_val then 'below'
            else 'inside'
        end as value_area_position,
        coalesce(close_price between session_val and session_vah, false)
            as is_in_value_area,
        -- newest minus the fifth newest minute of the session, as the strategy reads it
        cvd - lag(cvd, 4) over (
            partition by symbol_id, session_date order by bucket
        ) as cvd_momentum_5m,
        case
            when buy_volume > 0 and sell_volume > 0
                then greatest(buy_volume / sell_volume, sell_volume / buy_volume)
        end as pressure_ratio
    from joined
)

select * from signals
