-- finished backtest runs only: a run still running (or one that failed) has no complete
-- trades, so the marts never count it
with source as (
    select * from {{ source('marketflow', 'backtest_runs') }}
),

renamed as (
    select
        id as run_id,
        strategy_id,
        strategy_name,
        source as run_source,
        partition_key,
        first_day,
        last_day,
        started_at,
        finished_at,
        parameters,
        metrics,
        by_symbol,
        symbol_minutes,
        signals,
        trades,
        (parameters ->> 'capital')::float8 as capital,
        array_to_string(symbols, ',') as symbols
    from source
    where status = 'succeeded'
)

select * from renamed
