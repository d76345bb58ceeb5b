"""The ``orders`` table as the trader keeps it: rows, status updates, the open book.

``reserve`` is where a new position is decided: under a transaction-scoped advisory lock
it reads the open book (our pending entries plus the broker's positions, attributed to
the strategy whose filled order opened them), applies the position gates and inserts the
order row, all in one transaction. Two traders can therefore never both pass the
position gates on the same book (docs/trading-safety.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any

import psycopg

from analytics.risk import Bracket

OPEN_STATUSES = ("new", "submitted", "accepted", "partially_filled")
FILLED_STATUSES = ("filled", "partially_filled")
LOCK_KEY = "marketflow.orders"  # pg_advisory_xact_lock(hashtext(LOCK_KEY))

INSERT_SQL = """
insert into orders (client_order_id, symbol_id, strategy_id, side, qty, order_type,
                    entry, stop, target, status, reason, paper)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (client_order_id) do nothing
returning id
"""

# our pending entries, by symbol and strategy
PENDING_SQL = """
select distinct s.symbol, o.strategy_id from orders o join symbols s on s.id = o.symbol_id
where o.status = any(%(open)s) and o.paper = %(paper)s
"""

# which strategy opened each broker position: the one of its symbol's latest fill
OPENED_BY_SQL = """
select distinct on (o.symbol_id) s.symbol, o.strategy_id
from orders o join symbols s on s.id = o.symbol_id
where s.symbol = any(%(held)s) and o.status = any(%(filled)s) and o.paper = %(paper)s
order by o.symbol_id, o.created_at desc
"""


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    symbol_id: int
    strategy_id: int
    side: str
    entry: float
    paper: bool
    # "bracket" (equities), "market" (a crypto entry: Alpaca has no crypto bracket)
    order_type: str = "bracket"


@dataclass(frozen=True)
class Book:
    """Symbols held or pending (all), and by strategy id."""

    holding: frozenset[str]
    by_strategy: Mapping[int, frozenset[str]]

    def of(self, strategy_id: int) -> frozenset[str]:
        return self.by_strategy.get(strategy_id, frozenset())


async def insert(
    conn: psycopg.AsyncConnection,
    row: OrderRow,
    status: str,
    reason: str | None,
    bracket: Bracket | None = None,
    qty: float | None = None,
) -> bool:
    """Insert the order row; False when this client_order_id already exists."""
    cur = await conn.execute(
        INSERT_SQL,
        (
            row.client_order_id,
            row.symbol_id,
            row.strategy_id,
            row.side,
            qty,
            row.order_type,
            row.entry,
            bracket.stop if bracket else None,
            bracket.target if bracket else None,
            status,
            reason,
            row.paper,
        ),
    )
    return await cur.fetchone() is not None


LEG_SQL = """
insert into orders (client_order_id, symbol_id, strategy_id, side, qty, order_type,
                    entry, stop, status, reason, paper)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (client_order_id) do nothing
returning id
"""


async def insert_leg(
    conn: psycopg.AsyncConnection, row: OrderRow, qty: float, stop: float, status: str, reason: str
) -> bool:
    """An exit order of a position (a crypto entry's protective stop): the row, once."""
    cur = await conn.execute(
        LEG_SQL,
        (row.client_order_id, row.symbol_id, row.strategy_id, row.side, qty, row.order_type,
         row.entry, stop, status, reason, row.paper),
    )  # fmt: skip
    return await cur.fetchone() is not None


async def book(conn: psycopg.AsyncConnection, paper: bool, held: Set[str]) -> Book:
    """The open book: broker positions ``held`` plus our pending entries."""
    by_strategy: dict[int, set[str]] = {}
    holding = set(held)
    cur = await conn.execute(PENDING_SQL, {"open": list(OPEN_STATUSES), "paper": paper})
    for symbol, strategy_id in await cur.fetchall():
        holding.add(symbol)
        if strategy_id is not None:
            by_strategy.setdefault(int(strategy_id), set()).add(symbol)
    if held:
        cur = await conn.execute(
            OPENED_BY_SQL,
            {"held": sorted(held), "filled": list(FILLED_STATUSES), "paper": paper},
        )
        for symbol, strategy_id in await cur.fetchall():
            if strategy_id is not None:
                by_strategy.setdefault(int(strategy_id), set()).add(symbol)
    return Book(frozenset(holding), {k: frozenset(v) for k, v in by_strategy.items()})


async def reserve(
    conn: psycopg.AsyncConnection,
    row: OrderRow,
    held: Set[str],
    gate: Callable[[Book], str | None],
    bracket: Bracket,
    qty: float,
    reason: str | None,
) -> tuple[bool, str | None]:
    """One transaction under the orders lock: read the book, run ``gate`` on it, insert
    the row as ``new`` (gate passed) or ``blocked`` (with the gate's reason).

    Returns (inserted, blocked reason): inserted is False when the id already existed."""
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))
        why = gate(await book(conn, row.paper, held))
        if why is not None:
            return await insert(conn, row, "blocked", why, bracket), why
        return await insert(conn, row, "new", reason, bracket, qty), None


async def set_status(
    conn: psycopg.AsyncConnection, client_id: str, status: str, error: str | None = None
) -> None:
    await conn.execute(
        "update orders set status = %s, error = %s, updated_at = now(),"
        " submitted_at = coalesce(submitted_at, now()) where client_order_id = %s",
        (status, error, client_id),
    )


async def apply_broker(
    conn: psycopg.AsyncConnection, client_id: str, raw: Mapping[str, Any], status: str
) -> None:
    """Record what the broker says about an order (``status`` already mapped)."""

    def num(key: str) -> float | None:
        try:
            return float(raw[key]) if raw.get(key) not in (None, "") else None
        except (TypeError, ValueError):
            return None

    await conn.execute(
        """
        update orders set status = %s, broker_order_id = coalesce(%s, broker_order_id),
            raw = %s, updated_at = now(), error = null,
            submitted_at = coalesce(submitted_at, %s::timestamptz, now()),
            filled_at = %s::timestamptz, filled_qty = %s, filled_avg_price = %s
        where client_order_id = %s
        """,
        (
            status,
            raw.get("id"),
            json.dumps(raw, default=str),
            raw.get("submitted_at"),
            raw.get("filled_at"),
            num("filled_qty"),
            num("filled_avg_price"),
            client_id,
        ),
    )


async def unfinished(conn: psycopg.AsyncConnection, paper: bool) -> list[tuple[str, float]]:
    """Orders not yet final (client id, age in seconds), least recently updated first."""
    cur = await conn.execute(
        "select client_order_id, extract(epoch from now() - created_at)::float8 from orders"
        " where status = any(%s) and paper = %s order by updated_at limit 50",
        (list(OPEN_STATUSES), paper),
    )
    return [(str(cid), float(age)) for cid, age in await cur.fetchall()]
