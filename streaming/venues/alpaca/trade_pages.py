"""Alpaca REST trades pages into columns (pure, no I/O): ``/v2/stocks/trades`` and
``/v1beta3/crypto/us/trades`` answers (docs/providers.md, docs/history.md).

A page is ``{"trades": {SYMBOL: [trade, ...]}, "next_page_token": str | null}``; a stock
trade is ``{"t", "x", "p", "s", "c", "i", "z"}`` (``"u"`` when the venue later cancelled
or corrected it), a crypto trade ``{"t", "p", "s", "tks", "i"}``. ``read_page`` takes the
raw body: the common shape is read by Arrow's JSON reader straight into columns
(``arrow_pages``, no Python object per trade, and it lets go of the interpreter while it
works, so a page is read while the previous one is written); any other body takes the
explicit path here (orjson, then the same rules column by column). Bad trades are counted in
``Rejects`` (``core.validation`` reasons where they exist) and skipped, never raised:

``missing_id`` / ``missing_price`` / ``missing_size`` / ``missing_time``, ``malformed``
(a field of the wrong type), ``not_finite``, ``non_positive_price``, ``bad_size``
(size ≤ 0), ``outside_day`` (a time outside the requested window), ``unknown_symbol`` (a
symbol the request did not ask for). A body that is not a JSON object raises ``NotAPage``
(the client counts it and asks again).

Trades the venue flagged ``"u": "canceled"`` or ``"incorrect"`` are skipped (counted in
``TradesPage.flagged``, not as bad input); a ``"corrected"`` trade is the corrected print and
is kept, so a corrected trade counts once and a cancelled one never.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from core import validation as v
from core.events import Rejects, Trade
from core.timestamps import to_datetime
from streaming.venues.alpaca.parsing import to_utc

OUTSIDE_DAY = "outside_day"
NAT = np.iinfo(np.int64).min
FLAGGED = ("canceled", "incorrect")  # "u" values of prints that must not be counted
MISSING = {"i": "missing_id", "p": "missing_price", "s": "missing_size", "t": "missing_time"}
SIDES = {"B": 1, "S": -1}  # crypto taker side; "-" (unknown) → 0


class NotAPage(ValueError):
    """The body is not a JSON object (a proxy's error page, a cut-off answer)."""


@dataclass(slots=True)
class SymbolTrades:
    """One symbol's trades of a page, in the page's (time) order, as columns."""

    symbol: str  # the stored name (``storage.symbols.stored_symbol``)
    ts_ns: np.ndarray  # int64 ns since the epoch (UTC)
    price: np.ndarray  # float64
    size: np.ndarray  # float64
    trade_id: np.ndarray  # object: str, exchange-prefixed for stocks (as the stream's)
    exchange: np.ndarray  # object: str | None
    conditions: np.ndarray  # object: tuple[str, ...] | None
    side: np.ndarray  # int8: the venue's aggressor (crypto ``tks``), 0 unknown

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def to_trades(self, source: str, feed: str | None) -> list[Trade]:
        """As ``Trade`` events (the gap fill hands prints to the stream's queue)."""
        columns = zip(
            self.ts_ns.tolist(), self.price.tolist(), self.size.tolist(), self.trade_id,
            self.exchange, self.conditions, self.side.tolist(), strict=True,
        )  # fmt: skip
        return [
            Trade(self.symbol, to_datetime(ts), p, s, tid, x, tuple(c or ()), sd or None,
                  source=source, feed=feed)
            for ts, p, s, tid, x, c, sd in columns
        ]  # fmt: skip


@dataclass
class RawColumns:
    """A symbol's trades as read, before the rules: unreadable values are NaN / ``NAT``
    and the masks say why."""

    symbol: str
    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    trade_id: np.ndarray
    exchange: np.ndarray
    conditions: np.ndarray
    side: np.ndarray
    missing: dict[str, np.ndarray]  # reason → rows without that field
    malformed: np.ndarray  # rows with a field of the wrong type
    flagged: dict[str, np.ndarray]  # "u" value → rows the venue flagged so
    sample: Callable[[int], object]  # row → what a reject records


@dataclass
class TradesPage:
    symbols: list[SymbolTrades]
    next_page_token: str | None
    received: int = 0  # trade objects in the page, good or bad
    flagged: dict[str, int] = field(default_factory=dict)  # "u" value → prints skipped

    @property
    def kept(self) -> int:
        return sum(len(s) for s in self.symbols)


PageReader = Callable[[bytes], TradesPage]  # read_page with a request's names and counters


def page_token(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def read_page(
    body: bytes,
    names: Mapping[str, str],
    rejects: Rejects,
    window_ns: tuple[int, int] | None = None,
) -> TradesPage:
    """A raw page as columns per symbol. ``names`` maps each requested Alpaca name to its
    stored name; ``window_ns`` is the requested [start, end) (None: no bound)."""
    from streaming.venues.alpaca import arrow_pages  # pyarrow: loaded by the history only

    fast = arrow_pages.read(body, tuple(names))
    if fast is None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise NotAPage("not JSON") from None
        if not isinstance(payload, dict):
            raise NotAPage(f"a JSON {type(payload).__name__}, not an object")
        return parse_page(payload, names, rejects, window_ns)
    token, by_symbol, unknown = fast
    page = TradesPage([], page_token(token))
    for venue_name, count in unknown.items():
        _unknown(rejects, venue_name, count)
        page.received += count
    for venue_name, raw in by_symbol.items():
        raw.symbol = names[venue_name]
        page.received += len(raw.ts_ns)
        _keep(page, raw, rejects, window_ns)
    return page


def parse_page(
    payload: Mapping[str, Any],
    names: Mapping[str, str],
    rejects: Rejects,
    window_ns: tuple[int, int] | None = None,
) -> TradesPage:
    """A decoded page (``orjson``/``json``) as columns per symbol (see ``read_page``)."""
    by_symbol = payload.get("trades") or {}
    page = TradesPage([], page_token(payload.get("next_page_token")))
    if not isinstance(by_symbol, dict):
        rejects.add(v.MALFORMED, f"trades is a {type(by_symbol).__name__}")
        return page
    for venue_name, items in by_symbol.items():
        if not isinstance(items, list):
            rejects.add(v.MALFORMED, f"{venue_name!r}: {type(items).__name__}")
            continue
        page.received += len(items)
        stored = names.get(venue_name)
        if stored is None:
            _unknown(rejects, venue_name, len(items))
            continue
        _keep(page, _raw_columns(stored, items), rejects, window_ns)
    return page


def _unknown(rejects: Rejects, venue_name: str, count: int) -> None:
    if count:
        rejects.add(v.UNKNOWN_SYMBOL, f"{venue_name!r}: {count} trades")
        rejects.counts[v.UNKNOWN_SYMBOL] += count - 1


def _numbers(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """float64 of JSON numbers (NaN elsewhere) and the mask of values of another type."""
    try:
        out = np.asarray(values, dtype=np.float64)
        if out.ndim == 1 and not any(type(x) in (bool, str) for x in values):
            return out, np.zeros(len(values), bool)
    except (TypeError, ValueError):
        pass
    wrong = np.fromiter((x is not None and type(x) not in (int, float) for x in values), bool)
    out = np.array([x if type(x) in (int, float) else np.nan for x in values], np.float64)
    return out, wrong


def _times(values: list[Any]) -> np.ndarray:
    """int64 ns of RFC 3339 strings (``NAT`` where unreadable). Alpaca writes UTC with a
    ``Z`` and up to nine fraction digits: numpy parses those exactly; other forms (an
    offset) go through ``parsing.to_utc`` one by one."""
    try:
        if all(x[-1] == "Z" for x in values):
            return np.array([x[:-1] for x in values], dtype="datetime64[ns]").view(np.int64)
    except (TypeError, ValueError, IndexError):
        pass
    out = np.full(len(values), NAT, np.int64)
    for k, x in enumerate(values):
        try:
            if isinstance(x, str) and x.endswith("Z"):
                out[k] = np.datetime64(x[:-1], "ns").view(np.int64)
            else:
                stamp = to_utc(x)
                out[k] = int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
        except (TypeError, ValueError, OverflowError):
            continue
    return out


def _objects(values: list[Any]) -> np.ndarray:
    """An object array holding each value (tuples stay tuples, not a second dimension)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _raw_columns(symbol: str, items: list[Any]) -> RawColumns:
    """The explicit path: a symbol's decoded trade objects, a column at a time."""
    n = len(items)
    not_dict = np.fromiter((type(d) is not dict for d in items), bool, n)
    if not_dict.any():
        items = [d if type(d) is dict else {} for d in items]
    try:  # the common shape: every required field present
        t, p, s, i = (list(map(itemgetter(k), items)) for k in ("t", "p", "s", "i"))
    except KeyError:
        t, p, s, i = ([d.get(k) for d in items] for k in ("t", "p", "s", "i"))
    price, bad_price = _numbers(p)
    size, bad_size = _numbers(s)
    ts = _times(t)
    missing = {
        MISSING[k]: np.fromiter((x is None for x in values), bool, n)
        for k, values in (("i", i), ("p", p), ("s", s), ("t", t))
        if None in values
    }
    bad_id = np.fromiter((x is not None and type(x) not in (int, str) for x in i), bool, n)
    bad_time = (ts == NAT) & np.fromiter((x is not None for x in t), bool, n)
    exchange = [d.get("x") for d in items]
    conditions = [d.get("c") for d in items]
    updates = [d.get("u") for d in items]
    return RawColumns(
        symbol,
        ts,
        price,
        size,
        # parsing.trade_id's rule (the stream's ids): exchange-prefixed when there is one
        _objects([f"{x}-{r}" if x else str(r) for x, r in zip(exchange, i, strict=True)]),
        _objects([x if type(x) is str else None for x in exchange]),
        _objects([tuple(c) if type(c) is list and c else None for c in conditions]),
        np.array([SIDES.get(d.get("tks"), 0) for d in items], dtype=np.int8),
        missing,
        not_dict | bad_price | bad_size | bad_id | bad_time,
        {u: np.fromiter((x == u for x in updates), bool, n) for u in FLAGGED if u in updates},
        items.__getitem__,
    )


def _keep(
    page: TradesPage, raw: RawColumns, rejects: Rejects, window_ns: tuple[int, int] | None
) -> None:
    """The rules, one mask at a time; what passes them joins the page."""
    bad = np.zeros(raw.ts_ns.shape[0], bool)

    def mark(reason: str, mask: np.ndarray) -> None:
        new = mask & ~bad
        if new.any():
            rejects.add(reason, raw.sample(int(np.flatnonzero(new)[0])))
            rejects.counts[reason] += int(new.sum()) - 1
            bad[new] = True

    for reason, mask in raw.missing.items():
        mark(reason, mask)
    mark(v.MALFORMED, raw.malformed)
    with np.errstate(invalid="ignore"):
        mark(v.NOT_FINITE, ~(np.isfinite(raw.price) & np.isfinite(raw.size)))
        mark(v.BAD_PRICE, raw.price <= 0)
        mark(v.BAD_SIZE, raw.size <= 0)
    if window_ns is not None:
        mark(OUTSIDE_DAY, (raw.ts_ns < window_ns[0]) | (raw.ts_ns >= window_ns[1]))
    for update, mask in raw.flagged.items():
        skip = mask & ~bad
        if skip.any():
            page.flagged[update] = page.flagged.get(update, 0) + int(skip.sum())
            bad |= skip
    names = [f.name for f in fields(SymbolTrades)[1:]]
    columns = [getattr(raw, name) for name in names]
    if bad.any():
        keep = ~bad
        columns = [c[keep] for c in columns]
    trades = SymbolTrades(raw.symbol, *columns)
    if len(trades):
        page.symbols.append(trades)
