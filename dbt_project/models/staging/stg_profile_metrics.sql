-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, time) index (a view with WITH stays a
-- subquery, and each lookup sorts the whole day)
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
from {{ source('marketflow', 'profile_metrics') }}
