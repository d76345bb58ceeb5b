{{ config(materialized='table') }}

-- one row per active symbol: the latest of everything the dashboard's watchlist shows.
-- Rebuilt whole by every run (a handful of index lookups per symbol).

with symbols as (
    select * from {{ ref('stg_symbols') }}
    where is_active
),

latest as (
    select
        symbols.symbol_id,
        symbols.symbol,
        symbols.asset_type,
        symbols.market,
        candle.bucket as last_price_at,
        candle.close_price as last_price,
        candle.bucket_date as last_session_date
    from symbols
    left join lateral (
        select
            candles.bucket,
            candles.bucket_date,
            candles.close_price
        from {{ ref('stg_candles_1m') }} as candles
        where candles.symbol_id = symbols.symbol_id
        order by candles.bucket desc
        limit 1
    ) as candle on true
),

previous as (
    select
        latest.symbol_id,
        (
            select candles.close_price
            from {{ ref('stg_candles_1m') }} as candles
            where
                candles.symbol_id = latest.symbol_id
                and candles.bucket < latest.last_session_date::timestamp at time zone 'UTC'
            order by candles.bucket desc
            limit 1
        ) as previous_close
    from latest
),

final as (
    select
        latest.symbol_id,
        latest.symbol,
        latest.asset_type,
        latest.market,
        latest.last_price,
        latest.last_price_at,
        previous.previous_close,
        latest.last_price - previous.previous_close as price_change,
        case
            when previous.previous_close > 0
                then
                    (latest.last_price - previous.previous_close)
                    / previous.previous_close * 100
        end as price_change_pct,
        state.state as market_state,
        state.confidence as state_confidence,
        state.state_ts as state_at,
        flow.buy_pressure,
        flow.sell_pressure,
        flow.cvd as session_cvd,
        flow.bucket as flow_at,
        profile.session_date,
        profile.poc as session_poc,
        profile.vah as session_vah,
        profile.val as session_val,
        {{ nearest_lvn('profile.lvns', 'latest.last_price') }} as nearest_lvn,
        last_signal.signal_ts as last_signal_at,
        last_signal.signal_type as last_signal_type,
        last_signal.strategy_name as last_signal_strategy,
        last_signal.signal_price as last_signal_price
    from latest
    inner join previous
        on latest.symbol_id = previous.symbol_id
    left join lateral (
        select
            market_state.state,
            market_state.confidence,
            market_state.state_ts
        from {{ ref('stg_market_state') }} as market_state
        where market_state.symbol_id = latest.symbol_id
        order by market_state.state_ts desc
        limit 1
    ) as state on true
    left join lateral (
        select
            order_flow.buy_pressure,
            order_flow.sell_pressure,
            order_flow.cvd,
            order_flow.bucket
        from {{ ref('stg_order_flow') }} as order_flow
        where order_flow.symbol_id = latest.symbol_id
        order by order_flow.bucket desc
        limit 1
    ) as flow on true
    left join lateral (
        select
            profile_metrics.session_date,
            profile_metrics.poc,
            profile_metrics.vah,
            profile_metrics.val,
            profile_metrics.lvns
        from {{ ref('stg_profile_metrics') }} as profile_metrics
        where
            profile_metrics.symbol_id = latest.symbol_id
            and profile_metrics.horizon = 'session'
        order by profile_metrics.bucket desc
        limit 1
    ) as profile on true
    left join lateral (
        select
            signals.signal_ts,
            signals.signal_type,
            signals.signal_price,
            strategies.strategy_name
        from {{ ref('stg_signals') }} as signals
        left join {{ ref('stg_strategies') }} as strategies
            on signals.strategy_id = strategies.strategy_id
        where signals.symbol_id = latest.symbol_id
        order by signals.signal_ts desc
        limit 1
    ) as last_signal on true
)

select * from final
