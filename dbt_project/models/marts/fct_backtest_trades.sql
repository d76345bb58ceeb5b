{{ config(materialized='table') }}

-- backtest trades of succeeded runs with their run's context and per-trade ratios; rebuilt
-- whole on every run (backtests are rows of runs, not of days)

with trades as (
    select * from {{ ref('stg_backtest_trades') }}
),

runs as (
    select * from {{ ref('stg_backtest_runs') }}
),

final as (
    select
        t.run_id,
        t.trade_no,
        r.strategy_id,
        r.strategy_name,
        r.first_day,
        r.last_day,
        t.symbol_id,
        t.symbol,
        t.side,
        t.direction,
        t.qty,
        t.signal_ts,
        t.entry_ts,
        t.entry_date,
        t.entry_price,
        t.stop_price,
        t.target_price,
        t.exit_ts,
        t.exit_price,
        t.exit_reason,
        t.gross_pnl,
        t.commission,
        t.pnl,
        t.mae,
        t.mfe,
        t.bars_held,
        t.market_state,
        t.aggression_score,
        t.va_position,
        t.pnl > 0 as is_win,
        extract(epoch from t.exit_ts - t.entry_ts)::float8 / 60 as holding_minutes,
        t.direction * (t.exit_price / t.entry_price - 1) * 100 as return_pct,
        t.pnl / nullif(abs(t.entry_price - t.stop_price) * t.qty, 0) as r_multiple
    from trades as t
    inner join runs as r on t.run_id = r.run_id
)

select * from final
