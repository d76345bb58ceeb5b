with source as (
    select * from {{ source('marketflow', 'candles_1m') }}
),

renamed as (
    select
        symbol_id,
        ts as bucket,
        (ts at time zone 'UTC')::date as bucket_date,
        open as open_price,
        high as high_price,
        low as low_price,
        close as close_price,
        volume,
        trade_count,
        vwap
    from source
)

select * from renamed
