with source as (
    select * from {{ source('marketflow', 'profile_metrics') }}
),

renamed as (
    select
        symbol_id,
        horizon,
        bucket,
        session_date,
        poc,
        vah,
        val,
        total_volume,
        lvns,
        hvns,
        value_area_method
    from source
)

select * from renamed
