select
    id as symbol_id,
    symbol,
    asset_type,
    market,
    timezone as market_timezone,
    row_size,
    active as is_active
from {{ source('marketflow', 'symbols') }}
