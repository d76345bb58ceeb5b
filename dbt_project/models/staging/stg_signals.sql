-- one plain select, no WITH: PostgreSQL merges such a view into the marts' per-signal
-- lookups, which then walk the table's (symbol_id, time) index (a view with WITH stays a
-- subquery, and each lookup sorts the whole day)
-- numbers of the details JSON read only when they are JSON numbers, so a hand-written
-- string never breaks the cast
select
    ts as signal_ts,
    strategy_id,
    symbol_id,
    type as signal_type,
    price as signal_price,
    details,
    (ts at time zone 'UTC')::date as signal_date,
    date_trunc('minute', ts) as signal_minute,
    case type when 'BUY' then 1 when 'SELL' then -1 end as direction,
    case
        when jsonb_typeof(details -> 'atr') = 'number'
            then (details ->> 'atr')::float8
    end as atr,
    case
        when jsonb_typeof(details -> 'atr_stop_multiplier') = 'number'
            then (details ->> 'atr_stop_multiplier')::float8
    end as atr_stop_multiplier,
    case
        when jsonb_typeof(details -> 'atr_target_multiplier') = 'number'
            then (details ->> 'atr_target_multiplier')::float8
    end as atr_target_multiplier,
    case
        when jsonb_typeof(details -> 'aggression_score') = 'number'
            then (details ->> 'aggression_score')::float8
    end as aggression_score,
    details ->> 'reason' as reason
from {{ source('marketflow', 'signals') }}
