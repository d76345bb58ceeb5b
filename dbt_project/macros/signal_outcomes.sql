{#- The forward-return horizons of fct_signals, in minutes after the signal's minute, as
    text: callers iterate `signal_horizons().split()`. -#}
{% macro signal_horizons() -%}
    1 5 15 60
{%- endmacro %}

{#- Performance aggregates over fct_signals rows (strategy_performance): per horizon the
    signals evaluated, the hit rate (share with a positive signed return), mean and median
    signed return; then the excursions and bracket outcomes. -#}
{% macro signal_performance_columns() -%}
    count(*) as signals,
    {%- for h in signal_horizons().split() %}
    count(fwd_return_{{ h }}m_pct) as evaluated_{{ h }}m,
    avg((fwd_return_{{ h }}m_pct > 0)::int::float8) as hit_rate_{{ h }}m,
    avg(fwd_return_{{ h }}m_pct) as mean_return_{{ h }}m_pct,
    percentile_cont(0.5) within group (order by fwd_return_{{ h }}m_pct)
        as median_return_{{ h }}m_pct,
    {%- endfor %}
    avg(mfe_60m_pct) as mean_mfe_60m_pct,
    min(mae_60m_pct) as worst_mae_60m_pct,
    count(*) filter (where bracket_outcome = 'take_profit') as take_profits,
    count(*) filter (where bracket_outcome = 'stop_loss') as stop_losses
{%- endmacro %}

{#- The LVN of a profile's `lvns` JSON list nearest to a price (null without nodes). -#}
{% macro nearest_lvn(lvns, price) -%}
    (
        select (node ->> 'price')::float8
        from jsonb_array_elements(
            case when jsonb_typeof({{ lvns }}) = 'array' then {{ lvns }} else '[]'::jsonb end
        ) as node
        order by abs((node ->> 'price')::float8 - {{ price }}) asc
        limit 1
    )
{%- endmacro %}
