{{
    config(
        unique_key=['signal_ts', 'strategy_id', 'symbol_id'],
        pre_hook="{{ delete_partition_window('signal_date', lookback_days=1) }}",
        on_schema_change='append_new_columns'
    )
}}

-- one row per fired signal: its context at emission and what followed it. Context comes
-- from the last closed minute before the signal (no look-ahead: profile, order flow,
-- session VWAP, the session's stacked imbalances so far); outcomes from the candles
-- of the whole minutes after the signal's own minute (docs/signal-marts.md). Each run also
-- rebuilds the day before its window, so a signal of a day's last hour gets its 60-minute
-- outcomes once the next day's candles exist.

with signals as (
    select
        *,
        case
            when atr > 0 and atr_stop_multiplier > 0
                then signal_price - direction * atr * atr_stop_multiplier
        end as stop_price,
        case
            when atr > 0 and atr_target_multiplier > 0
                then signal_price + direction * atr * atr_target_multiplier
        end as target_price
    from {{ ref('stg_signals') }}
    where
        signal_ts >= {{ window_start_ts(1) }}
        and signal_ts < {{ window_end_ts() }}
        and direction is not null
),

context as (
    select
        signals.signal_ts,
        signals.strategy_id,
        signals.symbol_id,
        state.state as market_state,
        state.confidence as state_confidence,
        profile.poc as session_poc,
        profile.vah as session_vah,
        profile.val as session_val,
        {{ nearest_lvn('profile.lvns', 'signals.signal_price') }} as nearest_lvn,
        flow.buy_pressure,
        flow.sell_pressure,
        flow.cvd as session_cvd,
        vwap.vwap as session_vwap,
        vwap.sd as session_vwap_sd,
        stack.price as stacked_imbalance_price,
        stack.side as stacked_imbalance_side,
        stack.stack_len as stacked_imbalance_rows,
        stack.bucket as stacked_imbalance_at,
        coalesce(signals.aggression_score, state.aggression_score) as aggression_score
    from signals
    left join lateral (
        select
            market_state.state,
            market_state.confidence,
            market_state.aggression_score
        from {{ ref('stg_market_state') }} as market_state
        where
            market_state.symbol_id = signals.symbol_id
            and market_state.state_ts <= signals.signal_ts
        order by market_state.state_ts desc
        limit 1
    ) as state on true
    left join lateral (
        select
            profile_metrics.poc,
            profile_metrics.vah,
            profile_metrics.val,
            profile_metrics.lvns
        from {{ ref('stg_profile_metrics') }} as profile_metrics
        where
            profile_metrics.symbol_id = signals.symbol_id
            and profile_metrics.horizon = 'session'
            and profile_metrics.session_date = signals.signal_date
            and profile_metrics.bucket >= signals.signal_date::timestamp at time zone 'UTC'
            and profile_metrics.bucket < signals.signal_minute
        order by profile_metrics.bucket desc
        limit 1
    ) as profile on true
    left join lateral (
        select
            order_flow.buy_pressure,
            order_flow.sell_pressure,
            order_flow.cvd
        from {{ ref('stg_order_flow') }} as order_flow
        where
            order_flow.symbol_id = signals.symbol_id
            and order_flow.bucket >= signals.signal_date::timestamp at time zone 'UTC'
            and order_flow.bucket < signals.signal_minute
        order by order_flow.bucket desc
        limit 1
    ) as flow on true
    left join lateral (
        select
            session_vwap.vwap,
            session_vwap.sd
        from {{ ref('stg_session_vwap') }} as session_vwap
        where
            session_vwap.symbol_id = signals.symbol_id
            and session_vwap.session_date = signals.signal_date
            and session_vwap.bucket >= signals.signal_date::timestamp at time zone 'UTC'
            and session_vwap.bucket < signals.signal_minute
        order by session_vwap.bucket desc
        limit 1
    ) as vwap on true
    -- the stacked imbalance of the session so far nearest to the signal price (ties: the
    -- latest, then buy before sell)
    left join lateral (
        select
            imbalances.price,
            imbalances.side,
            imbalances.stack_len,
            imbalances.bucket
        from {{ ref('stg_footprint_imbalances') }} as imbalances
        where
            imbalances.symbol_id = signals.symbol_id
            and imbalances.bucket >= signals.signal_date::timestamp at time zone 'UTC'
            and imbalances.bucket < signals.signal_minute
            and imbalances.stack_len >= {{ var('stacked_imbalance_rows') }}
        order by
            abs(imbalances.price - signals.signal_price) asc,
            imbalances.bucket desc,
            imbalances.side asc
        limit 1
    ) as stack on true
),

-- how far each symbol's candles reach: a horizon is evaluated once a candle at or after
-- its last minute exists (later data cannot change the row any more)
reach as (
    select
        symbols.symbol_id,
        newest.bucket as last_candle
    from (select distinct symbol_id from signals) as symbols
    left join lateral (
        select all_candles.bucket
        from {{ ref('stg_candles_1m') }} as all_candles
        where all_candles.symbol_id = symbols.symbol_id
        order by all_candles.bucket desc
        limit 1
    ) as newest on true
),

-- per signal: the last close up to each horizon, and the hour's extremes and first hits
-- (index range scans per signal: no sort of every signal's hour of candles)
paths as (
    select
        signals.signal_ts,
        signals.strategy_id,
        signals.symbol_id,
        {%- for h in signal_horizons().split() %}
            close_{{ h }}m.close_price as close_{{ h }}m,
        {%- endfor %}
        next_hour.high_60m,
        next_hour.low_60m,
        next_hour.stop_minute,
        next_hour.target_minute
    from
        signals
    {%- for h in signal_horizons().split() %}
    left join lateral (
        select candles.close_price
        from {{ ref('stg_candles_1m') }} as candles
        where
            candles.symbol_id = signals.symbol_id
            and candles.bucket > signals.signal_minute
            and candles.bucket <= signals.signal_minute + interval '{{ h }} minutes'
        order by candles.bucket desc
        limit 1
        ) as close_{{ h }}m on true
    {%- endfor %}
    left join lateral (
        select
            min(extract(epoch from candles.bucket - signals.signal_minute) / 60) filter (
                where
                (signals.direction = 1 and candles.low_price <= signals.stop_price)
                or (signals.direction = -1 and candles.high_price >= signals.stop_price)
            )::int as stop_minute,
            min(extract(epoch from candles.bucket - signals.signal_minute) / 60) filter (
                where
                (signals.direction = 1 and candles.high_price >= signals.target_price)
                or (signals.direction = -1 and candles.low_price <= signals.target_price)
            )::int as target_minute,
            max(candles.high_price) as high_60m,
            min(candles.low_price) as low_60m
        from {{ ref('stg_candles_1m') }} as candles
        where
            candles.symbol_id = signals.symbol_id
            and candles.bucket > signals.signal_minute
            and candles.bucket <= signals.signal_minute + interval '60 minutes'
    ) as next_hour on true
),

outcomes as (
    select
        signals.signal_ts,
        signals.strategy_id,
        signals.symbol_id,
        {%- for h in signal_horizons().split() %}
            case
                when reach.last_candle >= signals.signal_minute + interval '{{ h }} minutes'
                -- + 0: an unchanged price is 0 for a SELL too, not -0
                    then
                        signals.direction
                        * (
                            coalesce(paths.close_{{ h }}m, signals.signal_price)
                            - signals.signal_price
                        )
                        / signals.signal_price * 100 + 0
            end as fwd_return_{{ h }}m_pct,
        {%- endfor %}
        reach.last_candle >= signals.signal_minute + interval '60 minutes' as is_complete,
        paths.stop_minute,
        paths.target_minute,
        case signals.direction when 1 then paths.high_60m else paths.low_60m end
            as favourable_extreme,
        case signals.direction when 1 then paths.low_60m else paths.high_60m end
            as adverse_extreme
    from signals
    inner join reach
        on signals.symbol_id = reach.symbol_id
    left join paths
        on
            signals.signal_ts = paths.signal_ts
            and signals.strategy_id = paths.strategy_id
            and signals.symbol_id = paths.symbol_id
),

final as (
    select
        signals.signal_ts,
        signals.signal_date,
        signals.strategy_id,
        strategies.strategy_name,
        signals.symbol_id,
        symbols.symbol,
        signals.signal_type,
        signals.direction,
        signals.signal_price,
        signals.reason,
        context.market_state,
        context.state_confidence,
        context.session_poc,
        context.session_vah,
        context.session_val,
        context.nearest_lvn,
        abs(signals.signal_price - context.nearest_lvn) / signals.signal_price * 100
            as lvn_distance_pct,
        context.session_vwap,
        context.session_vwap_sd,
        (signals.signal_price - context.session_vwap) / context.session_vwap * 100
            as vwap_distance_pct,
        case
            when context.session_vwap_sd > 0
                then (signals.signal_price - context.session_vwap) / context.session_vwap_sd
        end as vwap_distance_sd,
        context.stacked_imbalance_price,
        context.stacked_imbalance_side,
        context.stacked_imbalance_rows,
        context.stacked_imbalance_at,
        (context.stacked_imbalance_price - signals.signal_price) / signals.signal_price * 100
            as stacked_imbalance_distance_pct,
        context.buy_pressure,
        context.sell_pressure,
        context.buy_pressure - context.sell_pressure as pressure_imbalance,
        context.session_cvd,
        context.aggression_score,
        {%- for h in signal_horizons().split() %}
            outcomes.fwd_return_{{ h }}m_pct,
        {%- endfor %}
        case
            when outcomes.is_complete
                then greatest(0, signals.direction * (
                    coalesce(outcomes.favourable_extreme, signals.signal_price)
                    - signals.signal_price
                ) / signals.signal_price * 100)
        end as mfe_60m_pct,
        case
            when outcomes.is_complete
                then least(0, signals.direction * (
                    coalesce(outcomes.adverse_extreme, signals.signal_price)
                    - signals.signal_price
                ) / signals.signal_price * 100)
        end as mae_60m_pct,
        signals.stop_price,
        signals.target_price,
        -- the first minute that reaches a level decides; a minute reaching both counts as
        -- the stop (a one-minute bar cannot tell which came first: assume the worse)
        case
            when signals.stop_price is null or signals.target_price is null then null
            when
                outcomes.stop_minute is not null
                and (
                    outcomes.target_minute is null
                    or outcomes.stop_minute <= outcomes.target_minute
                )
                then 'stop_loss'
            when outcomes.target_minute is not null then 'take_profit'
            when outcomes.is_complete then 'neither'
        end as bracket_outcome,
        case
            when signals.stop_price is not null and signals.target_price is not null
                then least(outcomes.stop_minute, outcomes.target_minute)
        end as bracket_exit_minutes
    from signals
    inner join {{ ref('stg_symbols') }} as symbols
        on signals.symbol_id = symbols.symbol_id
    left join {{ ref('stg_strategies') }} as strategies
        on signals.strategy_id = strategies.strategy_id
    left join context
        on
            signals.signal_ts = context.signal_ts
            and signals.strategy_id = context.strategy_id
            and signals.symbol_id = context.symbol_id
    left join outcomes
        on
            signals.signal_ts = outcomes.signal_ts
            and signals.strategy_id = outcomes.strategy_id
            and signals.symbol_id = outcomes.symbol_id
)

select * from final
