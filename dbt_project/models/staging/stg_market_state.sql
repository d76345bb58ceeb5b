-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, time) index (a view with WITH stays a
-- subquery, and each lookup sorts the whole day)
select
    symbol_id,
    ts as state_ts,
    (ts at time zone 'UTC')::date as state_date,
    state,
    confidence,
    poc,
    balance_high,
    balance_low,
    case
        when jsonb_typeof(details -> 'aggression_score') = 'number'
            then (details ->> 'aggression_score')::float8
    end as aggression_score,
    case
        when jsonb_typeof(details -> 'pressure_imbalance') = 'number'
            then (details ->> 'pressure_imbalance')::float8
    end as pressure_imbalance,
    case
        when jsonb_typeof(details -> 'price') = 'number'
            then (details ->> 'price')::float8
    end as price
from {{ source('marketflow', 'market_state') }}
