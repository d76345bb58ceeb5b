{{ config(materialized='table') }}

-- per backtest run (scope 'run', symbol null) and per run and symbol (scope 'symbol'):
-- trade statistics from the trades, and the curve-based metrics (drawdown, Sharpe,
-- Sortino, exposure) the backtest computed from its equity curve and days
-- (stg_backtest_runs.metrics / by_symbol); rebuilt whole on every run

with trades as (
    select * from {{ ref('fct_backtest_trades') }}
),

runs as (
    select * from {{ ref('stg_backtest_runs') }}
),

per_symbol as (
    select
        run_id,
        symbol,
        {{ backtest_trade_stats() }}
    from trades
    group by run_id, symbol
),

-- every succeeded run has a row, with or without trades
per_run as (
    select
        runs.run_id,
        null::text as symbol,
        {{ backtest_trade_stats() }}
    from runs
    left join trades on runs.run_id = trades.run_id
    group by runs.run_id
),

stats as (
    select
        'symbol' as scope,
        *
    from per_symbol
    union all
    select
        'run' as scope,
        *
    from per_run
),

final as (
    select
        s.scope,
        s.run_id,
        r.strategy_name,
        r.first_day,
        r.last_day,
        s.symbol,
        r.capital,
        s.trades,
        s.wins,
        s.win_rate,
        s.total_pnl,
        s.avg_pnl,
        s.gross_profit,
        s.gross_loss,
        s.profit_factor,
        s.avg_holding_minutes,
        s.avg_mae,
        s.avg_mfe,
        s.longs,
        s.shorts,
        s.stops,
        s.targets,
        s.session_closes,
        s.end_of_data,
        s.total_pnl / r.capital * 100 as return_pct,
        ({{ run_metric('max_drawdown') }})::float8 as max_drawdown,
        ({{ run_metric('max_drawdown_pct') }})::float8 as max_drawdown_pct,
        ({{ run_metric('sharpe') }})::float8 as sharpe,
        ({{ run_metric('sortino') }})::float8 as sortino,
        ({{ run_metric('exposure') }})::float8 as exposure
    from stats as s
    inner join runs as r on s.run_id = r.run_id
)

select * from final
