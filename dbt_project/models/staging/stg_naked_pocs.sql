select
    symbol_id,
    session_date,
    poc,
    touched_at
from {{ source('marketflow', 'naked_pocs') }}
