select
    id as strategy_id,
    name as strategy_name,
    active as is_active,
    definition ->> 'type' as strategy_kind
from {{ source('marketflow', 'strategies') }}
