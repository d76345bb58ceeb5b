with source as (
    select * from {{ source('marketflow', 'backtest_trades') }}
),

renamed as (
    select
        run_id,
        trade_no,
        symbol_id,
        symbol,
        side,
        qty,
        signal_ts,
        signal_price,
        entry_ts,
        entry_price,
        stop as stop_price,
        target as target_price,
        exit_ts,
        exit_price,
        exit_reason,
        gross_pnl,
        commission,
        pnl,
        mae,
        mfe,
        bars_held,
        market_state,
        aggression_score,
        va_position,
        (entry_ts at time zone 'UTC')::date as entry_date,
        case side when 'buy' then 1 when 'sell' then -1 end as direction
    from source
)

select * from renamed
