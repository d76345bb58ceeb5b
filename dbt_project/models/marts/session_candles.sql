{{
    config(
        unique_key=['symbol_id', 'session_date'],
        pre_hook="{{ delete_partition_window('session_date') }}"
    )
}}

-- one daily candle per symbol and session, in the market's time zone. The session's
-- minutes are those its running session profile covers (the profile assets follow each
-- market's exchange calendar); a day without a profile falls back to all of its candles.

with candles as (
    select * from {{ ref('stg_candles_1m') }}
    where
        bucket >= {{ window_start_ts() }}
        and bucket < {{ window_end_ts() }}
),

session_bounds as (
    select
        symbol_id,
        session_date,
        min(bucket) as first_minute,
        max(bucket) as last_minute
    from {{ ref('stg_profile_metrics') }}
    where
        horizon = 'session'
        and session_date >= {{ window_start() }}
        and session_date < {{ window_end() }}
    group by symbol_id, session_date
),

session_minutes as (
    select
        candles.*,
        session_bounds.first_minute is not null as is_exchange_session
    from candles
    left join session_bounds
        on
            candles.symbol_id = session_bounds.symbol_id
            and candles.bucket_date = session_bounds.session_date
    where
        session_bounds.first_minute is null
        or candles.bucket between session_bounds.first_minute and session_bounds.last_minute
),

daily as (
    select
        symbol_id,
        bucket_date as session_date,
        bool_and(is_exchange_session) as is_exchange_session,
        min(bucket) as first_minute_at,
        max(bucket) as last_minute_at,
        (array_agg(open_price order by bucket asc))[1] as open_price,
        max(high_price) as high_price,
        min(low_price) as low_price,
        (array_agg(close_price order by bucket desc))[1] as close_price,
        sum(volume) as volume,
        sum(trade_count) as trade_count,
        sum(vwap * volume) filter (where vwap is not null)
        / nullif(sum(volume) filter (where vwap is not null), 0) as vwap,
        count(*) as minutes_traded
    from session_minutes
    group by symbol_id, bucket_date
),

final as (
    select
        daily.symbol_id,
        symbols.symbol,
        symbols.market,
        symbols.market_timezone,
        daily.session_date,
        (daily.first_minute_at at time zone symbols.market_timezone)::date as local_date,
        daily.first_minute_at,
        daily.last_minute_at,
        daily.is_exchange_session,
        daily.open_price,
        daily.high_price,
        daily.low_price,
        daily.close_price,
        daily.volume,
        daily.trade_count,
        daily.vwap,
        daily.minutes_traded,
        daily.first_minute_at at time zone symbols.market_timezone as first_minute_local,
        daily.last_minute_at at time zone symbols.market_timezone as last_minute_local
    from daily
    inner join {{ ref('stg_symbols') }} as symbols
        on daily.symbol_id = symbols.symbol_id
)

select * from final
