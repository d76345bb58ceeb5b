select
    id as opportunity_id,
    kind,
    market_id,
    event_id,
    opened_at,
    closed_at,
    best_edge,
    size,
    -- a pair is keyed by its market, a neg_risk basket by its event
    (opened_at at time zone 'UTC')::date as opened_date,
    coalesce(market_id, event_id) as opportunity_key
from {{ source('marketflow', 'binary_opportunities') }}
