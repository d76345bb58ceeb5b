-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, bucket, price) index
select
    symbol_id,
    bucket,
    (bucket at time zone 'UTC')::date as bucket_date,
    price::float8 as price,
    side,
    volume,
    opposite,
    stack_len
from {{ source('marketflow', 'footprint_imbalances') }}
