with source as (
    select * from {{ source('marketflow', 'order_flow') }}
),

renamed as (
    select
        symbol_id,
        bucket,
        (bucket at time zone 'UTC')::date as bucket_date,
        delta,
        cvd,
        cvd_total,
        buy_volume,
        sell_volume,
        buy_pressure,
        sell_pressure,
        trade_count
    from source
)

select * from renamed
