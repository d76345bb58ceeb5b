-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, bucket) index
select
    symbol_id,
    bucket,
    session_date,
    vwap,
    sd,
    volume
from {{ source('marketflow', 'session_vwap') }}
