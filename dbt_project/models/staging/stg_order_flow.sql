-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, time) index (a view with WITH stays a
-- subquery, and each lookup sorts the whole day)
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
from {{ source('marketflow', 'order_flow') }}
