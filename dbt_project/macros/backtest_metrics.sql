{# trade statistics of a group of fct_backtest_trades rows (zero trades: counts 0, sums 0,
   ratios null) #}
{% macro backtest_trade_stats() %}
    count(pnl) as trades,
    count(pnl) filter (where pnl > 0) as wins,
    avg(case when pnl > 0 then 1.0 else 0.0 end) filter (where pnl is not null) as win_rate,
    coalesce(sum(pnl), 0) as total_pnl,
    avg(pnl) as avg_pnl,
    coalesce(sum(pnl) filter (where pnl > 0), 0) as gross_profit,
    coalesce(-sum(pnl) filter (where pnl < 0), 0) as gross_loss,
    sum(pnl) filter (where pnl > 0)
    / nullif(-sum(pnl) filter (where pnl < 0), 0) as profit_factor,
    avg(holding_minutes) as avg_holding_minutes,
    avg(mae) as avg_mae,
    avg(mfe) as avg_mfe,
    count(pnl) filter (where direction = 1) as longs,
    count(pnl) filter (where direction = -1) as shorts,
    count(pnl) filter (where exit_reason = 'stop') as stops,
    count(pnl) filter (where exit_reason = 'target') as targets,
    count(pnl) filter (where exit_reason = 'session_close') as session_closes,
    count(pnl) filter (where exit_reason = 'end_of_data') as end_of_data
{% endmacro %}

{# a curve-based metric of the backtest itself: the run's (scope 'run') or the symbol's
   (scope 'symbol'), as text from its JSON; needs aliases s (stats) and r (runs) #}
{% macro run_metric(name) %}
    case
        when s.scope = 'run' then r.metrics ->> '{{ name }}'
        else r.by_symbol -> s.symbol ->> '{{ name }}'
    end
{% endmacro %}
