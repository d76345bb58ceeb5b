-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, time) index (a view with WITH stays a
-- subquery, and each lookup sorts the whole day)
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
from {{ source('marketflow', 'candles_1m') }}
