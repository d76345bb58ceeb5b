"""A venue's corrections and cancels applied to stored prints (docs/corrections.md).

Each amendment runs in its own transaction: the amended print is looked up and locked, the
amendment is recorded in the append-only ``tick_corrections`` with what the print was, and
only if that record is new is the print changed: a correction rewrites its id, price, size
and conditions in place (its time and ``seq`` stay, so it keeps its place in the tape, as a
replay of the corrected tape would put it), a cancel or error deletes it. A repeated
amendment finds its record already there and changes nothing (``duplicate``); one whose
print was never stored is recorded as ``unmatched`` and changes nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.timestamps import MINUTE_NS, to_ns

APPLIED, UNMATCHED, DUPLICATE = "applied", "unmatched", "duplicate"
# how far before the message's time the amended print is looked for: Alpaca stamps a
# correction with the print's own time; other venues may stamp the correction itself
LOOKBACK = timedelta(days=2)
AHEAD = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class AmendmentRow:
    """One amendment, its symbol resolved (``core.events.TradeAmendment`` otherwise)."""

    symbol_id: int
    kind: str
    venue_ts: datetime
    trade_id: str
    price: float | None = None
    size: float | None = None
    conditions: tuple[str, ...] = ()
    corrected_trade_id: str | None = None
    corrected_price: float | None = None
    corrected_size: float | None = None
    corrected_conditions: tuple[str, ...] = ()
    exchange: str | None = None
    tape: str | None = None


@dataclass(frozen=True, slots=True)
class AmendmentResult:
    row: AmendmentRow
    outcome: str  # APPLIED, UNMATCHED or DUPLICATE
    minute_ns: int | None = None  # the changed print's minute (none when unmatched)


# the stored print as it was, in tick_corrections' tick_* order
_FIND_EXACT = """
select ts, seq, price, size, conditions, side, bid, ask, source, feed from ticks
where symbol_id = %s and ts = %s and trade_id = %s
for update
"""
_FIND_NEAR = """
select ts, seq, price, size, conditions, side, bid, ask, source, feed from ticks
where symbol_id = %s and trade_id = %s and ts >= %s and ts < %s
order by ts desc limit 1
for update
"""
_EXISTS = "select 1 from ticks where symbol_id = %s and ts = %s and trade_id = %s"
_RECORD = """
insert into tick_corrections (
    source, symbol_id, kind, venue_ts, exchange, tape, trade_id, price, size, conditions,
    corrected_trade_id, corrected_price, corrected_size, corrected_conditions, outcome,
    tick_ts, tick_seq, tick_price, tick_size, tick_conditions, tick_side, tick_bid, tick_ask,
    tick_source, tick_feed)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict do nothing
returning id
"""
_RECORDED_TS = """
select tick_ts from tick_corrections
where symbol_id = %s and trade_id = %s and corrected_trade_id is not distinct from %s
"""
_CORRECT = """
update ticks set trade_id = %s, price = %s, size = %s, conditions = %s
where symbol_id = %s and ts = %s and trade_id = %s
"""
_DELETE = "delete from ticks where symbol_id = %s and ts = %s and trade_id = %s"


def _find(cur: psycopg.Cursor, a: AmendmentRow) -> tuple | None:
    row = cur.execute(_FIND_EXACT, (a.symbol_id, a.venue_ts, a.trade_id)).fetchone()
    if row is None:
        window = (a.venue_ts - LOOKBACK, a.venue_ts + AHEAD)
        row = cur.execute(_FIND_NEAR, (a.symbol_id, a.trade_id, *window)).fetchone()
    return row


class _Duplicate(Exception):
    pass


def _apply_one(conn: psycopg.Connection, a: AmendmentRow, source: str) -> AmendmentResult:
    with conn.transaction(), conn.cursor() as cur:
        tick = _find(cur, a)
        outcome = APPLIED if tick is not None else UNMATCHED
        before = tick if tick is not None else (None,) * 10
        record = (
            source, a.symbol_id, a.kind, a.venue_ts, a.exchange, a.tape, a.trade_id,
            a.price, a.size, list(a.conditions) or None, a.corrected_trade_id,
            a.corrected_price, a.corrected_size, list(a.corrected_conditions) or None,
            outcome, *before,
        )  # fmt: skip
        recorded = cur.execute(_RECORD, record).fetchone()
        if recorded is None:
            raise _Duplicate  # rolls the transaction back: nothing changes
        if tick is None:
            return AmendmentResult(a, UNMATCHED)
        ts = tick[0]
        key = (a.symbol_id, ts, a.trade_id)
        if a.kind == "correction" and a.corrected_trade_id is not None:
            corrected_key = (a.symbol_id, ts, a.corrected_trade_id)
            if cur.execute(_EXISTS, corrected_key).fetchone() is not None:
                cur.execute(_DELETE, key)  # the corrected print is stored already
            else:
                conditions = list(a.corrected_conditions) or None
                cur.execute(
                    _CORRECT,
                    (a.corrected_trade_id, a.corrected_price, a.corrected_size, conditions, *key),
                )
        else:
            cur.execute(_DELETE, key)
    ns = to_ns(ts)
    return AmendmentResult(a, APPLIED, ns - ns % MINUTE_NS)


def apply_amendments(
    conn: psycopg.Connection, rows: Sequence[AmendmentRow], source: str
) -> list[AmendmentResult]:
    """Apply ``rows`` in order, each in its own transaction (``conn`` in autocommit)."""
    results = []
    for row in rows:
        try:
            results.append(_apply_one(conn, row, source))
        except _Duplicate:
            # the minute it changed then: a caller that failed between applying and
            # rebuilding that minute's candle can still rebuild it
            key = (row.symbol_id, row.trade_id, row.corrected_trade_id)
            found = conn.execute(_RECORDED_TS, key).fetchone()
            ts = found[0] if found is not None else None
            minute = None if ts is None else to_ns(ts) - to_ns(ts) % MINUTE_NS
            results.append(AmendmentResult(row, DUPLICATE, minute))
    return results


def changed_minutes(results: Iterable[AmendmentResult]) -> set[tuple[int, int]]:
    """(symbol_id, minute_ns) of every print an amendment changed."""
    return {(r.row.symbol_id, r.minute_ns) for r in results if r.minute_ns is not None}
