"""Turn ``Trade`` events into rows for the ``ticks`` table: validation and trade ids (pure).

No I/O here; ``storage.tick_writer`` sends what this produces. Decisions pinned by tests:

* A print is **rejected** (counted with a sample in ``Rejects``, never stored, never raised)
  when its price is not a finite number > 0, its size is not a finite number >= 0, its
  timestamp is naive, or it lies more than ``max_future`` ahead of the writer's clock
  (a clock that is days off is bad input, docs/ingest.md). Far-past timestamps are fine: replays
  of old captures are legitimate.
* Prints with a venue trade id keep it (as text). Prints without one get a **derived id**
  ``~{price!r}:{size!r}:{k}`` where ``k`` counts earlier id-less prints of the same symbol,
  timestamp, price and size *within the same batch*. ``ts`` and the symbol are already part
  of the key, so the derived id only has to tell apart prints at one instant.

  What that guarantees: n identical id-less prints in one batch are stored as n rows, and
  replaying the same rows is idempotent as long as identical prints travel in the same batch
  (a recorded file replayed with the same batch size; a reconnect that re-sends a batch).
  Two identical id-less prints split across two batches both get ``k = 0``, so the second is
  taken for a duplicate: without a venue id, "the same print again" and "a new print equal in
  every field" cannot be told apart, and marketflow chooses idempotency. The ``~`` prefix keeps
  derived ids apart from venue ids (numeric or hex at every supported venue).
* ``source`` and ``feed`` are the print's provenance (docs/history.md); a print that does
  not carry one is stored as ``unknown`` with no feed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

from core.contracts import TickSource
from core.events import Rejects, Trade

# (symbol_id, ts, trade_id, price, size, exchange, conditions, side, bid, ask, source, feed)
TickRow = tuple[
    int,
    datetime,
    str,
    float,
    float,
    str | None,
    list[str] | None,
    int | None,
    float | None,
    float | None,
    str,
    str | None,
]

COLUMNS: tuple[str, ...] = (
    "symbol_id",
    "ts",
    "trade_id",
    "price",
    "size",
    "exchange",
    "conditions",
    "side",
    "bid",
    "ask",
    "source",
    "feed",
)
# PostgreSQL types of COLUMNS, for binary COPY
COPY_TYPES: tuple[str, ...] = (
    "int8",
    "timestamptz",
    "text",
    "float8",
    "float8",
    "text",
    "text[]",
    "int2",
    "float8",
    "float8",
    "text",
    "text",
)

DEFAULT_MAX_FUTURE = timedelta(days=1)
UNKNOWN_SOURCE = TickSource.UNKNOWN.value  # a print that does not say how it arrived
_DAY = timedelta(days=1)


def derived_trade_id(price: float, size: float, ordinal: int) -> str:
    """The id of an id-less print: price, size and its ordinal among identical prints."""
    return f"~{price!r}:{size!r}:{ordinal}"


def rejection_reason(trade: Trade, latest_ok: datetime) -> str | None:
    """Why ``trade`` cannot be stored, or None when it is fine."""
    price, size = trade.price, trade.size
    if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
        return "bad_price"
    if not isinstance(size, int | float) or not math.isfinite(size) or size < 0:
        return "bad_size"
    ts = trade.ts
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        return "naive_timestamp"
    if ts > latest_ok:
        return "timestamp_in_future"
    if not isinstance(trade.symbol, str) or not trade.symbol or len(trade.symbol) > 128:
        return "bad_symbol"
    if trade.side not in (None, 1, -1):
        return "bad_side"
    return None


def iter_rows(
    trades: Iterable[Trade],
    symbol_id: Callable[[str], int | None],
    rejects: Rejects,
    on_day: Callable[[date], object],
    *,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> Iterator[TickRow]:
    """Validated rows for ``COLUMNS``, lazily (the writer streams them into COPY).

    Invalid prints are added to ``rejects``. ``symbol_id`` maps a symbol to its id (None
    when unknown: rejected as ``unknown_symbol``); it is called once per symbol per call and
    only for valid prints, so a resolver that creates symbols never creates junk ones.
    ``on_day`` hears the UTC day of every row whose day differs from the previous row's.
    """
    # This loop is the writer's whole per-print Python cost, so the common shape (numbers,
    # UTC-aware time, known symbol) is checked inline and anything else takes the slow,
    # explicit path through rejection_reason.
    latest_ok = (now or datetime.now(UTC)) + max_future
    inf = math.inf
    seen: dict[tuple[str, datetime, float, float], int] = {}
    ids: dict[str, int | None] = {}
    day_lo = day_hi = latest_ok  # an empty range: the first print sets it
    for trade in trades:
        price, size, ts, side = trade.price, trade.size, trade.ts, trade.side
        sid = ids.get(trade.symbol)
        if not (
            sid is not None
            and (type(price) is float or type(price) is int)
            and (type(size) is float or type(size) is int)
            and type(ts) is datetime
            and ts.tzinfo is UTC
            and 0.0 < price < inf
            and 0.0 <= size < inf
            and ts <= latest_ok
            and (side is None or side == 1 or side == -1)
        ):
            reason = rejection_reason(trade, latest_ok)
            if reason is not None:
                rejects.add(reason, trade)
                continue
            if trade.symbol not in ids:
                ids[trade.symbol] = symbol_id(trade.symbol)
            sid = ids[trade.symbol]
            if sid is None:
                rejects.add("unknown_symbol", trade)
                continue
            if ts.tzinfo is not UTC:
                ts = ts.astimezone(UTC)
        price, size = float(price), float(size)
        trade_id = trade.trade_id
        if trade_id is None or trade_id == "":
            key = (trade.symbol, ts, price, size)
            ordinal = seen.get(key, 0)
            seen[key] = ordinal + 1
            trade_id = derived_trade_id(price, size, ordinal)
        elif type(trade_id) is not str:
            trade_id = str(trade_id)
        if not day_lo <= ts < day_hi:
            day = ts.date()
            on_day(day)
            day_lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
            day_hi = day_lo + _DAY
        bid, ask = trade.bid, trade.ask
        # a missing or broken quote is "unknown", not a reason to drop the print
        if bid is not None and not ((type(bid) is float or type(bid) is int) and 0 < bid < inf):
            bid = None
        if ask is not None and not ((type(ask) is float or type(ask) is int) and 0 < ask < inf):
            ask = None
        yield (
            sid,
            ts,
            trade_id,
            price,
            size,
            trade.exchange or None,
            list(trade.conditions) if trade.conditions else None,
            side,
            bid,
            ask,
            trade.source or UNKNOWN_SOURCE,
            trade.feed or None,
        )


def trades_to_rows(
    trades: Iterable[Trade],
    symbol_id: Callable[[str], int | None],
    rejects: Rejects,
    *,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> tuple[list[TickRow], set[date]]:
    """All validated rows of ``trades`` and the UTC days they fall on (see ``iter_rows``)."""
    days: set[date] = set()
    rows = list(iter_rows(trades, symbol_id, rejects, days.add, now=now, max_future=max_future))
    return rows, days
