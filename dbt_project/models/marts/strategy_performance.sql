{{
    config(
        unique_key=['scope', 'strategy_id', 'symbol_id', 'session_date'],
        pre_hook="{{ delete_partition_window(
            'session_date', lookback_days=1, or_where=\"scope = 'all_history'\"
        ) }}"
    )
}}

-- per strategy, symbol and session: how its signals did (fct_signals), and the same over
-- all history (scope 'all_history', session_date null, recomputed by every run). The
-- window reaches one day back, as fct_signals does.

with signals as (
    select * from {{ ref('fct_signals') }}
),

per_session as (
    select
        'session' as scope,
        strategy_id,
        strategy_name,
        symbol_id,
        symbol,
        signal_date as session_date,
        {{ signal_performance_columns() }}
    from signals
    where
        signal_date >= {{ window_start(1) }}
        and signal_date < {{ window_end() }}
    group by strategy_id, strategy_name, symbol_id, symbol, signal_date
),

all_history as (
    select
        'all_history' as scope,
        strategy_id,
        strategy_name,
        symbol_id,
        symbol,
        null::date as session_date,
        {{ signal_performance_columns() }}
    from signals
    group by strategy_id, strategy_name, symbol_id, symbol
),

final as (
    select * from per_session
    union all
    select * from all_history
)

select * from final
