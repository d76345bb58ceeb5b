"""Full order books per token from the CLOB market channel (docs/semantics.md).

- ``book`` snapshots replace a token's ladders; levels arrive best LAST, so the best bid
  is the max price and the best ask the min price (never element 0).
- ``price_change`` in both schemas: legacy (one level at the top level, or a ``changes``
  list) and current (``price_changes[]``, each with ``best_bid``/``best_ask``, which are
  authoritative: levels better than them are gone and are trimmed).
- a size of 0 removes a level; ``tick_size_change`` invalidates the book until a fresh
  snapshot (levels on the old grid are no longer trustworthy); ``last_trade_price`` is
  recorded.
- staleness: a book is stale when it is invalid or when neither it nor its connection
  (PONG replies, see ``touch``) has been heard from for ``stale_seconds``.

Ladders are dicts price → size with the best price cached, so a delta costs O(1) and only
removing the best level rescans its side. Prices are parsed from the venue's decimal
strings with ``float``; equal strings give equal keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from core.events import Rejects


class BadMessage(ValueError):
    """A frame or element that cannot be applied; ``reason`` is the reject counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Price strings repeat (a few thousand ticks in [0, 1]): memoise their parse. Only valid
# prices are cached and the cache is bounded, so junk input cannot grow it.
_PRICE_CACHE: dict[str, float] = {}
_PRICE_CACHE_MAX = 20_000


def _price(value: object) -> float:
    p = _PRICE_CACHE.get(value) if isinstance(value, str) else None
    if p is not None:
        return p
    try:
        # untrusted input: float() raises on what it cannot read, handled below
        p = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadMessage("bad_price") from None
    if not (0.0 <= p <= 1.0):  # also rejects NaN
        raise BadMessage("bad_price")
    if isinstance(value, str) and len(_PRICE_CACHE) < _PRICE_CACHE_MAX:
        _PRICE_CACHE[value] = p
    return p


def _size(value: object) -> float:
    try:
        # untrusted input: float() raises on what it cannot read, handled below
        s = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadMessage("bad_size") from None
    if not (0.0 <= s < math.inf):
        raise BadMessage("bad_size")
    return s


def _opt_price(value: object) -> float | None:
    """An authoritative best price; '' / None / out of (0, 1) mean an empty side."""
    p = _PRICE_CACHE.get(value) if isinstance(value, str) else None
    if p is None:
        if value is None or value == "":
            return None
        p = _price(value)
    return p if 0.0 < p < 1.0 else None


@dataclass(slots=True)
class LastTrade:
    price: float
    size: float
    side: str | None
    ts_ms: int | None


class OrderBook:
    """One token's ladders, best prices cached."""

    __slots__ = (
        "alive_at",
        "asks",
        "asset_id",
        "best_ask",
        "best_bid",
        "bids",
        "last_trade",
        "market",
        "tick_size",
        "ts_ms",
        "updated_at",
        "valid",
    )

    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id
        self.market: str | None = None
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.best_bid: float | None = None
        self.best_ask: float | None = None
        self.valid = False  # True only between a snapshot and an invalidation
        self.tick_size: float | None = None
        self.ts_ms: int | None = None  # venue timestamp of the last applied message
        self.updated_at = -math.inf  # local monotonic time of the last message
        self.alive_at = -math.inf  # local time the connection last proved alive
        self.last_trade: LastTrade | None = None

    # --- mutations ---------------------------------------------------------------
    def snapshot(self, bids: Iterable[object], asks: Iterable[object]) -> None:
        new_bids = _ladder(bids)
        new_asks = _ladder(asks)
        self.bids, self.asks = new_bids, new_asks
        self.best_bid = max(new_bids) if new_bids else None
        self.best_ask = min(new_asks) if new_asks else None
        self.valid = True

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        if is_bid:
            if size > 0.0:
                self.bids[price] = size
                if self.best_bid is None or price > self.best_bid:
                    self.best_bid = price
            elif self.bids.pop(price, None) is not None and price == self.best_bid:
                self.best_bid = max(self.bids) if self.bids else None
        elif size > 0.0:
            self.asks[price] = size
            if self.best_ask is None or price < self.best_ask:
                self.best_ask = price
        elif self.asks.pop(price, None) is not None and price == self.best_ask:
            self.best_ask = min(self.asks) if self.asks else None

    def set_best(self, best_bid: float | None, best_ask: float | None) -> None:
        """Apply the venue's authoritative top: drop levels better than it (consumed)."""
        if best_bid is None:
            self.bids.clear()
        elif self.best_bid is not None and self.best_bid > best_bid:
            for p in [p for p in self.bids if p > best_bid]:
                del self.bids[p]
        self.best_bid = best_bid
        if best_ask is None:
            self.asks.clear()
        elif self.best_ask is not None and self.best_ask < best_ask:
            for p in [p for p in self.asks if p < best_ask]:
                del self.asks[p]
        self.best_ask = best_ask

    def apply_best(self, fields: dict) -> None:
        """The venue's ``best_bid``/``best_ask`` where present (an absent key says nothing
        about its side; an empty or out-of-range value means the side is empty)."""
        best_bid = _opt_price(fields["best_bid"]) if "best_bid" in fields else self.best_bid
        best_ask = _opt_price(fields["best_ask"]) if "best_ask" in fields else self.best_ask
        if best_bid != self.best_bid or best_ask != self.best_ask:
            self.set_best(best_bid, best_ask)

    def invalidate(self) -> None:
        self.valid = False
        self.bids.clear()
        self.asks.clear()
        self.best_bid = self.best_ask = None

    # --- reads -------------------------------------------------------------------
    def ask_ladder(self) -> list[tuple[float, float]]:
        """Asks best first (ascending), from the authoritative best ask outwards."""
        floor = self.best_ask if self.best_ask is not None else 0.0
        return sorted(item for item in self.asks.items() if item[0] >= floor)

    def bid_ladder(self) -> list[tuple[float, float]]:
        """Bids best first (descending)."""
        return sorted(self.bids.items(), reverse=True)

    def best_ask_size(self) -> float:
        return self.asks.get(self.best_ask, 0.0) if self.best_ask is not None else 0.0

    def best_bid_size(self) -> float:
        return self.bids.get(self.best_bid, 0.0) if self.best_bid is not None else 0.0

    def is_stale(self, now: float, stale_seconds: float) -> bool:
        return (not self.valid) or now - max(self.updated_at, self.alive_at) > stale_seconds


def _ladder(levels: Iterable[object]) -> dict[float, float]:
    out: dict[float, float] = {}
    if not isinstance(levels, list):
        raise BadMessage("bad_levels")
    for level in levels:
        if isinstance(level, dict):
            p, s = level.get("price"), level.get("size")
        elif isinstance(level, list | tuple) and len(level) == 2:
            p, s = level  # the older [[price, size], ...] shape
        else:
            raise BadMessage("bad_level")
        size = _size(s)
        if size > 0.0:
            out[_price(p)] = size
    return out


def _ts_ms(value: object) -> int | None:
    try:
        # untrusted input: int() raises on what it cannot read, handled below
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON Infinity
        return None


class BookStore:
    """Every token's book; ``apply`` takes one decoded frame and names the tokens changed.

    A ``price_change`` behind the top of the book is applied but not reported unless the
    token is in ``watch``: the quote, edge and flag only depend on the top, and the depth
    only matters (executable size) while the top clears the threshold.

    ``assets`` restricts the store to subscribed tokens (others are counted in
    ``ignored`` and skipped, so a chatty feed cannot grow memory without bound).
    Malformed frames and elements are counted in ``rejects`` and skipped.
    """

    def __init__(self, assets: Iterable[str] | None = None, source: str = "polymarket") -> None:
        self.books: dict[str, OrderBook] = {}
        self.assets: set[str] | None = set(assets) if assets is not None else None
        self.rejects = Rejects(source)
        # tokens whose depth matters (their market's top clears the threshold, so its
        # executable size is walked): changes behind the top are reported for these only
        self.watch: set[str] = set()
        self.ignored = 0
        self.applied = 0
        # books a tick_size_change invalidated: the stream asks the venue for a snapshot
        self.invalidated: set[str] = set()

    def add_assets(self, assets: Iterable[str]) -> None:
        if self.assets is not None:
            self.assets.update(assets)

    def remove_assets(self, assets: Iterable[str]) -> None:
        for aid in assets:
            if self.assets is not None:
                self.assets.discard(aid)
            self.books.pop(aid, None)
            self.watch.discard(aid)

    def book(self, asset_id: str) -> OrderBook | None:
        return self.books.get(asset_id)

    def _get(self, asset_id: object) -> OrderBook | None:
        if not isinstance(asset_id, str) or not asset_id:
            raise BadMessage("missing_asset_id")
        book = self.books.get(asset_id)
        if book is None:
            if self.assets is not None and asset_id not in self.assets:
                self.ignored += 1
                return None
            book = self.books[asset_id] = OrderBook(asset_id)
        return book

    def reset(self, asset_ids: Iterable[str] | None = None) -> None:
        """Invalidate books (a reconnect): they stay invalid until a fresh snapshot."""
        targets = (
            self.books.values()
            if asset_ids is None
            else (self.books[a] for a in asset_ids if a in self.books)
        )
        for book in targets:
            book.invalidate()

    def touch(self, asset_ids: Iterable[str], now: float) -> None:
        """The connection carrying these tokens proved alive (PONG) at ``now``."""
        books = self.books
        for aid in asset_ids:
            book = books.get(aid)
            if book is not None:
                book.alive_at = now

    # --- decoding ----------------------------------------------------------------
    def apply_text(self, text: str | bytes, now: float) -> list[str]:
        """Decode one WebSocket text frame and apply it; bad JSON is counted, not raised."""
        try:
            msg = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            self.rejects.add("bad_json", text[:200])
            return []
        return self.apply(msg, now)

    def apply(self, msg: object, now: float) -> list[str]:
        changed: list[str] = []
        if isinstance(msg, list):  # snapshots arrive as an array of book objects
            for item in msg:
                self._apply_one(item, now, changed)
        else:
            self._apply_one(msg, now, changed)
        return changed

    def _apply_one(self, msg: object, now: float, changed: list[str]) -> None:
        if not isinstance(msg, dict):
            self.rejects.add("not_an_object", msg)
            return
        try:
            kind = msg.get("event_type")
            if kind == "price_change":
                self._price_change(msg, now, changed)
            elif kind == "book" or (kind is None and "bids" in msg and "asks" in msg):
                self._book(msg, now, changed)
            elif kind == "last_trade_price":
                self._last_trade(msg, now, changed)
            elif kind == "tick_size_change":
                self._tick_size(msg, now, changed)
            elif kind == "best_bid_ask":
                self._best_bid_ask(msg, now, changed)
            elif isinstance(kind, str):
                self.ignored += 1  # new_market, market_resolved, …: not book events
            else:
                raise BadMessage("unknown_event")
        except BadMessage as exc:
            self.rejects.add(exc.reason, msg)

    def _book(self, msg: dict, now: float, changed: list[str]) -> None:
        book = self._get(msg.get("asset_id"))
        if book is None:
            return
        # frame data: snapshot() validates every level and rejects what is not a ladder
        book.snapshot(msg.get("bids"), msg.get("asks"))  # type: ignore[arg-type]
        book.market = msg.get("market") or book.market
        book.ts_ms = _ts_ms(msg.get("timestamp"))
        book.updated_at = now
        self.applied += 1
        changed.append(book.asset_id)

    def _price_change(self, msg: dict, now: float, changed: list[str]) -> None:
        ts = _ts_ms(msg.get("timestamp"))
        entries = msg.get("price_changes")
        if entries is None:  # legacy schema: one level at the top, or a `changes` list
            legacy = msg.get("changes")
            aid = msg.get("asset_id")
            if legacy is None:
                legacy = [msg]
            elif not isinstance(legacy, list):
                raise BadMessage("bad_changes")
            # a non-object element stays as it is and is rejected per entry below
            entries = [
                {"asset_id": aid, **change} if isinstance(change, dict) else change
                for change in legacy
            ]
        elif not isinstance(entries, list):
            raise BadMessage("bad_changes")
        for change in entries:
            try:
                aid = self._change(change, ts, now)
            except BadMessage as exc:  # one bad entry: count it, keep the others
                self.rejects.add(exc.reason, change)
                continue
            if aid is not None and aid not in changed:
                changed.append(aid)

    def _change(self, change: object, ts: int | None, now: float) -> str | None:
        # The hottest function of the stream: lookups are inlined (memoised prices, one
        # dict access per field); every malformed field still ends in a BadMessage.
        if type(change) is not dict:
            raise BadMessage("bad_change")
        try:
            aid = change["asset_id"]
            p = change["price"]
            raw_size = change["size"]
            side = change["side"]
        except KeyError as exc:
            raise BadMessage(f"missing_{exc.args[0]}") from None
        try:
            size = float(raw_size)
        except (TypeError, ValueError):
            raise BadMessage("bad_size") from None
        book = self.books.get(aid) if isinstance(aid, str) else None
        if book is None:
            book = self._get(aid)
            if book is None:
                return None
        price = _PRICE_CACHE.get(p) if isinstance(p, str) else None
        if price is None:
            price = _price(p)
        if not (0.0 <= size < math.inf):
            raise BadMessage("bad_size")
        if side == "BUY" or side == "buy":
            is_bid = True
        elif side == "SELL" or side == "sell":
            is_bid = False
        else:
            raise BadMessage("bad_side")
        book.updated_at = now
        if not book.valid:
            return None  # no snapshot since connect / tick change: wait for one
        top_bid, top_ask = book.best_bid, book.best_ask
        book.set_level(is_bid, price, size)
        if "best_bid" in change or "best_ask" in change:
            book.apply_best(change)
        book.ts_ms = ts
        self.applied += 1
        if book.best_bid == top_bid and book.best_ask == top_ask and aid not in self.watch:
            return None  # a level behind the top moved: nothing a market row shows changed
        return aid

    def _best_bid_ask(self, msg: dict, now: float, changed: list[str]) -> None:
        book = self._get(msg.get("asset_id"))
        if book is None:
            return
        book.updated_at = now
        if book.valid:
            book.apply_best(msg)
            book.ts_ms = _ts_ms(msg.get("timestamp"))
            changed.append(book.asset_id)

    def _tick_size(self, msg: dict, now: float, changed: list[str]) -> None:
        book = self._get(msg.get("asset_id"))
        if book is None:
            return
        try:
            # untrusted input: float() raises on what it cannot read, handled below
            book.tick_size = float(msg.get("new_tick_size"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadMessage("bad_tick_size") from None
        book.invalidate()
        book.updated_at = now
        self.invalidated.add(book.asset_id)
        changed.append(book.asset_id)

    def _last_trade(self, msg: dict, now: float, changed: list[str]) -> None:
        book = self._get(msg.get("asset_id"))
        if book is None:
            return
        side = msg.get("side")
        book.last_trade = LastTrade(
            price=_price(msg.get("price")),
            size=_size(msg.get("size")),
            side=side if isinstance(side, str) else None,
            ts_ms=_ts_ms(msg.get("timestamp")),
        )
        book.updated_at = now
        changed.append(book.asset_id)  # the market's row carries the last price
