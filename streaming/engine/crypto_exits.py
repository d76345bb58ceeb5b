"""The protective stop of a crypto position (docs/trading-safety.md).

Alpaca has no bracket order for crypto, so the trader enters a pair with a plain market
order and places the stop once the entry is filled: a ``stop_limit`` sell, good till
cancelled, for the quantity the position really holds (Alpaca takes a crypto buy's fee in
the coin bought, so a little less than was filled), at the stop the gates computed, with
its limit ``STOP_LIMIT_ROOM`` below so a fast fall still fills. Its client order id is the
entry's plus ``-stop`` and its ``orders`` row is written before the request: it is placed
at most once, and an entry whose stop could not be placed yet (rate limit, a broker
outage) is found again by the next loop. The target is not placed: Alpaca reserves the
coins for the stop, so a second sell would be refused; the position's upside is left open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import psycopg

from analytics.increments import Increments, decimal
from streaming.engine import orders
from streaming.venues.alpaca.execution import AlpacaExecution, broker_error, broker_status

log = logging.getLogger(__name__)

LEG_SUFFIX = "-stop"
STOP_LIMIT_ROOM = Decimal("0.01")  # the limit 1 % under the stop: filled in a fast fall
PER_LOOP = 3

UNPROTECTED_SQL = f"""
select o.client_order_id, o.symbol_id, o.strategy_id, s.symbol, o.stop, o.filled_qty,
       s.asset_type, s.price_increment, s.qty_increment, s.min_order_qty
from orders as o join symbols as s on s.id = o.symbol_id
where o.paper = %s and o.order_type = 'market' and o.side = 'buy' and o.status = 'filled'
    and o.stop is not null
    and not exists (
        select 1 from orders as leg where leg.client_order_id = o.client_order_id || '{LEG_SUFFIX}')
order by o.filled_at
limit {PER_LOOP}
"""


def stop_limit_price(stop: float, increments: Increments) -> float:
    """The stop leg's limit: ``STOP_LIMIT_ROOM`` under the stop, down to the increment."""
    return float(increments.round_price(decimal(stop) * (1 - STOP_LIMIT_ROOM), ROUND_FLOOR))


async def protect_filled_entries(
    conn: psycopg.AsyncConnection,
    broker: AlpacaExecution,
    call: Callable[..., Awaitable[Any]],
    paper: bool,
) -> int:
    """Place the stops of filled crypto entries that have none; how many were sent.
    ``call`` is the trader's rate-limited broker call (it raises when the bucket is empty:
    the rest waits for a later loop)."""
    cur = await conn.execute(UNPROTECTED_SQL, (paper,))
    sent = 0
    for cid, sid, strategy_id, symbol, stop, filled, asset_type, *steps in await cur.fetchall():
        increments = Increments.for_symbol(asset_type, *steps)
        available = await call(broker.position_available, symbol)
        qty = float(increments.floor_qty(decimal(min(float(available), float(filled or 0)))))
        leg = orders.OrderRow(
            f"{cid}{LEG_SUFFIX}", sid, strategy_id, "sell", float(stop), paper, "stop_limit"
        )
        reason = f"protective stop of {cid}"
        if qty <= 0:  # nothing held any more: recorded so it is not asked again
            await orders.insert_leg(conn, leg, 0.0, stop, "blocked", f"{reason}: no position")
            continue
        if not await orders.insert_leg(conn, leg, qty, stop, "new", reason):
            continue
        limit = stop_limit_price(float(stop), increments)
        try:
            submit = broker.submit_protective_stop
            raw = await call(submit, symbol, qty, stop, limit, leg.client_order_id)
        except Exception as exc:
            status, text = broker_error(exc)
            final = "rejected" if status is not None and 400 <= status < 500 else "submitted"
            log.warning("protective stop %s: %s %s", leg.client_order_id, status, text)
            await orders.set_status(conn, leg.client_order_id, final, error=text[:500])
            continue
        raw = raw or {}
        await orders.apply_broker(conn, leg.client_order_id, raw, broker_status(raw))
        log.info("protective stop %s: sell %g %s at %g", leg.client_order_id, qty, symbol, stop)
        sent += 1
    return sent
