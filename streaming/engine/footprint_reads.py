"""The engine's footprint reads (``strategies.footprint``): three set-based statements for
every symbol at once — the newest ``session_vwap`` row, the longest stack per side over the
recent bars of ``footprint_imbalances`` and the newest big print per side — each a probe
of the table's primary key per symbol, never a statement per symbol."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from strategies.footprint import BIG_PRINT_WINDOW, SIDES, STACK_WINDOW, Footprint

VWAP_ROW_SQL = """
select s.id, date_part('epoch', v.bucket), v.vwap, v.sd
from unnest(%(ids)s::bigint[]) as s (id)
cross join lateral (
    select bucket, vwap, sd from session_vwap
    where symbol_id = s.id and bucket <= %(now)s
    order by bucket desc limit 1
) as v
"""

# per side the longest stack, the newest bar on a tie (``footprint.longest_stacks``)
STACKS_SQL = """
select distinct on (symbol_id, side) symbol_id, side, stack_len, date_part('epoch', bucket)
from footprint_imbalances
where symbol_id = any(%(ids)s) and bucket > %(since)s and bucket <= %(now)s
order by symbol_id, side, stack_len desc, bucket desc
"""

# per side the newest print, the last stored on a tie (``footprint.newest_prints``); a
# print's minute starts at most a minute before it
BIG_PRINTS_SQL = """
select distinct on (symbol_id, side) symbol_id, side, date_part('epoch', ts), price, size
from big_prints
where symbol_id = any(%(ids)s) and bucket > %(since_bucket)s and bucket <= %(now)s
  and ts > %(since)s and ts <= %(now)s
order by symbol_id, side, ts desc, bucket desc, print_no desc
"""


async def read_footprint(cur: psycopg.AsyncCursor[Any], ids: list[int], now: datetime) -> Footprint:
    """Every symbol's footprint at ``now`` (``ids``: the universe, in order)."""
    fp = Footprint.empty(len(ids))
    where = {sid: k for k, sid in enumerate(ids)}
    await cur.execute(VWAP_ROW_SQL, {"ids": ids, "now": now})
    for sid, bucket, vwap, sd in await cur.fetchall():
        k = where[int(sid)]
        fp.vwap_bucket[k], fp.vwap[k], fp.vwap_sd[k] = bucket, vwap, sd
    await cur.execute(STACKS_SQL, {"ids": ids, "since": now - STACK_WINDOW, "now": now})
    for sid, side, stack_len, bucket in await cur.fetchall():
        k = where[int(sid)]
        if side == "sell":
            fp.stack_sell[k], fp.stack_sell_bucket[k] = stack_len, bucket
        else:
            fp.stack_buy[k], fp.stack_buy_bucket[k] = stack_len, bucket
    since = now - BIG_PRINT_WINDOW
    await cur.execute(
        BIG_PRINTS_SQL,
        {"ids": ids, "now": now, "since": since, "since_bucket": since - timedelta(minutes=1)},
    )
    for sid, side, ts, price, size in await cur.fetchall():
        k, col = where[int(sid)], SIDES[side]
        fp.big_ts[k, col], fp.big_price[k, col], fp.big_size[k, col] = ts, price, size
    return fp
