with source as (
    select * from {{ source('marketflow', 'naked_pocs') }}
),

renamed as (
    select
        symbol_id,
        session_date,
        poc,
        touched_at
    from source
)

select * from renamed
