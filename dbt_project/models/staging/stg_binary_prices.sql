select
    market_id,
    ts as price_ts,
    (ts at time zone 'UTC')::date as price_date,
    symbol_id,
    yes_bid,
    yes_ask,
    no_bid,
    no_ask,
    edge,
    executable_size,
    arbitrage as is_arbitrage,
    stale as is_stale
from {{ source('marketflow', 'binary_prices') }}
