"""Per-market view of the books: quotes, edge, size, staleness, opportunity episodes.

In memory only (no I/O): the stream feeds it the tokens a frame changed, and every
conflation interval takes the rows that changed (``take_rows``) and the episode events
(``take_events``) to store and publish. All maths comes from ``analytics.arbitrage``.

An opportunity is an EPISODE: it opens on the first evaluation with ``edge > min_edge``,
a positive executable size and fresh books, and closes on the first evaluation without;
in between only its best edge and size are updated. Paper trading books once per episode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from analytics.arbitrage import (
    Fill,
    PairView,
    clears,
    evaluate_basket,
    evaluate_pair,
    pair_edge,
    pair_entry,
    taker_fee,
)
from streaming.polymarket.book import BookStore, OrderBook


@dataclass(frozen=True)
class MarketInfo:
    """What the monitor needs of one ``binary_markets`` row."""

    market_id: str
    symbol_id: int | None
    symbol: str
    yes_token_id: str
    no_token_id: str
    fee_rate: float = 0.0
    event_id: str | None = None
    neg_risk: bool = False
    augmented: bool = False
    # outcomes of the negRisk event that can still win (all but those resolved NO), active
    # or not: a basket is only complete when the monitor holds every one of them
    event_outcomes: int | None = None


class PriceRow(NamedTuple):
    """One ``binary_prices`` row (without its timestamp, set when written).

    A NamedTuple: one is built per evaluation and compared with the last (C-speed ==)."""

    market_id: str
    symbol_id: int | None
    yes_bid: float | None
    yes_ask: float | None
    yes_mid: float | None
    no_bid: float | None
    no_ask: float | None
    no_mid: float | None
    spread: float | None
    edge: float | None
    executable_size: float
    yes_last: float | None
    no_last: float | None
    arbitrage: bool
    stale: bool

    def payload(self, symbol: str, ts: datetime) -> dict[str, Any]:
        out = self._asdict()
        out.update(symbol=symbol, time=ts.isoformat())
        return out


@dataclass
class Episode:
    kind: str  # 'pair' | 'neg_risk'
    key: str  # market_id for pairs, event_id for baskets
    opened_at: datetime
    best_edge: float
    size: float
    details: dict[str, Any]
    market: MarketInfo | None = None  # pairs only
    entry: Fill | None = None  # the equal-share pair paper trading would book
    db_id: int | None = None  # set by the store once inserted
    closed_at: datetime | None = None


@dataclass
class EpisodeEvent:
    action: str  # 'open' | 'close'
    episode: Episode


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _last(book: OrderBook | None) -> float | None:
    return book.last_trade.price if book is not None and book.last_trade else None


@dataclass
class Monitor:
    markets: Iterable[MarketInfo]
    books: BookStore
    min_edge: float
    stale_seconds: float
    paper_max_cost: float = 100.0
    clock: Any = field(default=_now_utc)  # wall clock for episode times (tests pin it)

    def __post_init__(self) -> None:
        self.by_id: dict[str, MarketInfo] = {}
        self.by_token: dict[str, tuple[MarketInfo, bool]] = {}
        self.events: dict[str, list[MarketInfo]] = {}
        self.last_rows: dict[str, PriceRow] = {}  # last row handed out per market
        self.pending: dict[str, PriceRow] = {}  # changed since the last take_rows()
        self.open: dict[tuple[str, str], Episode] = {}
        self.out_events: list[EpisodeEvent] = []
        # markets / negRisk events whose top clears the threshold (depth matters)
        self._pair_deep: set[str] = set()
        self._basket_deep: set[str] = set()
        self.evaluations = 0
        self.add_markets(self.markets)

    # --- market set ----------------------------------------------------------------
    def add_markets(self, markets: Iterable[MarketInfo]) -> list[str]:
        """Track markets; returns the token ids newly tracked (to subscribe)."""
        new_tokens: list[str] = []
        for m in markets:
            known = self.by_id.get(m.market_id)
            if known is not None:
                if known != m and (known.yes_token_id, known.no_token_id) == (
                    m.yes_token_id,
                    m.no_token_id,
                ):
                    self._replace(known, m)  # re-read by a refresh: fee, outcome count, …
                continue
            self.by_id[m.market_id] = m
            for token, is_yes in ((m.yes_token_id, True), (m.no_token_id, False)):
                self.by_token[token] = (m, is_yes)
                new_tokens.append(token)
            if m.neg_risk and m.event_id:
                self.events.setdefault(m.event_id, []).append(m)
        self.books.add_assets(new_tokens)
        return new_tokens

    def _replace(self, old: MarketInfo, new: MarketInfo) -> None:
        self.by_id[new.market_id] = new
        self.by_token[new.yes_token_id] = (new, True)
        self.by_token[new.no_token_id] = (new, False)
        if old.event_id in self.events:
            self.events[old.event_id] = [x for x in self.events[old.event_id] if x is not old]
        if new.neg_risk and new.event_id:
            self.events.setdefault(new.event_id, []).append(new)
        if old.event_id in self.events and not self.events[old.event_id]:
            del self.events[old.event_id]

    def remove_markets(self, market_ids: Iterable[str], now: float) -> list[str]:
        """Stop tracking (closed/resolved); open episodes close. Returns tokens to drop."""
        dropped: list[str] = []
        for mid in market_ids:
            m = self.by_id.pop(mid, None)
            if m is None:
                continue
            for token in (m.yes_token_id, m.no_token_id):
                self.by_token.pop(token, None)
                dropped.append(token)
            self._close(("pair", mid))
            self._pair_deep.discard(mid)
            if m.event_id in self.events:
                self.events[m.event_id] = [x for x in self.events[m.event_id] if x is not m]
                self._close(("neg_risk", m.event_id))
            self.last_rows.pop(mid, None)
            self.pending.pop(mid, None)
        self.books.remove_assets(dropped)
        return dropped

    # --- evaluation ----------------------------------------------------------------
    def on_changed(self, assets: Iterable[str], now: float) -> None:
        """Re-evaluate the markets (and negRisk events) whose books ``assets`` changed."""
        seen_events: set[str] = set()
        for aid in assets:
            entry = self.by_token.get(aid)
            if entry is None:
                continue
            market, is_yes = entry
            self.evaluate(market, now)
            if is_yes and market.event_id in self.events and market.event_id not in seen_events:
                seen_events.add(market.event_id)
                self.evaluate_event(market.event_id, now)

    def sweep(self, now: float) -> None:
        """Periodic pass: books fall stale by silence alone, with no message to trigger it."""
        for market in list(self.by_id.values()):
            self.evaluate(market, now)
        for event_id in list(self.events):
            self.evaluate_event(event_id, now)

    def _stale(self, book: OrderBook | None, now: float) -> bool:
        return book is None or book.is_stale(now, self.stale_seconds)

    def evaluate(self, market: MarketInfo, now: float) -> PriceRow:
        self.evaluations += 1
        yes = self.books.book(market.yes_token_id)
        no = self.books.book(market.no_token_id)
        stale = self._stale(yes, now) or self._stale(no, now)
        # the books that can be read: present and valid (None otherwise)
        ok_y = yes if yes is not None and yes.valid else None
        ok_n = no if no is not None and no.valid else None
        yes_ask = ok_y.best_ask if ok_y is not None else None
        no_ask = ok_n.best_ask if ok_n is not None else None
        # ladders are sorted only when the top clears the threshold (rare): O(1) otherwise
        deep = (
            yes_ask is not None
            and no_ask is not None
            and clears(pair_edge(yes_ask, no_ask, market.fee_rate), self.min_edge)
        )
        if deep != (market.market_id in self._pair_deep):
            # the executable size depends on depth only while the top clears: watch then
            if deep:
                self._pair_deep.add(market.market_id)
            else:
                self._pair_deep.discard(market.market_id)
            self._rewatch(market.yes_token_id, market.no_token_id)
        view = evaluate_pair(
            ok_y.best_bid if ok_y is not None else None,
            yes_ask,
            ok_n.best_bid if ok_n is not None else None,
            no_ask,
            market.fee_rate,
            self.min_edge,
            # deep implies both asks, so both books
            ok_y.ask_ladder() if deep and ok_y is not None else None,
            ok_n.ask_ladder() if deep and ok_n is not None else None,
            stale=stale,
        )
        row = PriceRow(
            market.market_id,
            market.symbol_id,
            view.yes_bid,
            view.yes_ask,
            view.yes_mid,
            view.no_bid,
            view.no_ask,
            view.no_mid,
            view.spread,
            view.edge,
            view.executable_size,
            _last(yes),
            _last(no),
            view.arbitrage,
            stale,
        )
        if self.last_rows.get(market.market_id) != row:
            self.last_rows[market.market_id] = row
            self.pending[market.market_id] = row
        self._track_pair(market, view, yes, no)
        return row

    def _track_pair(
        self, market: MarketInfo, view: PairView, yes: OrderBook | None, no: OrderBook | None
    ) -> None:
        key = ("pair", market.market_id)
        episode = self.open.get(key)
        if not view.arbitrage:
            if episode is not None:
                self._close(key)
            return
        assert view.edge is not None and yes is not None and no is not None
        if episode is None:
            details = {
                "yes_ask": view.yes_ask,
                "no_ask": view.no_ask,
                "spread": view.spread,
                "fee_rate": market.fee_rate,
                "min_edge": self.min_edge,
                "yes_token_id": market.yes_token_id,
                "no_token_id": market.no_token_id,
                "symbol": market.symbol,
            }
            entry = pair_entry(
                yes.ask_ladder(),
                no.ask_ladder(),
                market.fee_rate,
                self.min_edge,
                self.paper_max_cost,
            )
            episode = Episode(
                "pair",
                market.market_id,
                self.clock(),
                view.edge,
                view.executable_size,
                details,
                market=market,
                entry=entry,
            )
            self.open[key] = episode
            self.out_events.append(EpisodeEvent("open", episode))
        else:
            episode.best_edge = max(episode.best_edge, view.edge)
            episode.size = max(episode.size, view.executable_size)

    def evaluate_event(self, event_id: str, now: float) -> None:
        members = self.events.get(event_id) or []
        if not members or any(m.augmented for m in members):
            return  # augmented events are skipped: the outcome set is not closed
        needed = max((m.event_outcomes or 0) for m in members)
        if len(members) < needed:
            # an outcome that can still win is not streamed (closed, paused): the asks of
            # the others are not a complete basket, whatever their sum
            self._close(("neg_risk", event_id))
            return
        books = [self.books.book(m.yes_token_id) for m in members]
        stale = any(self._stale(b, now) for b in books)
        tops = [b.best_ask if b is not None and b.valid else None for b in books]
        rates = [m.fee_rate for m in members]
        known = [p for p in tops if p is not None]
        deep = len(known) == len(tops) and clears(
            1.0 - sum(known) - sum(taker_fee(p, r) for p, r in zip(known, rates, strict=True)),
            self.min_edge,
        )
        if deep != (event_id in self._basket_deep):
            if deep:
                self._basket_deep.add(event_id)
            else:
                self._basket_deep.discard(event_id)
            self._rewatch(*(m.yes_token_id for m in members))
        # full ladders only when the top clears the threshold; else the top level suffices
        ladders = [
            None
            if top is None or b is None  # a top price comes from a book
            else (b.ask_ladder() if deep else [(top, b.best_ask_size())])
            for b, top in zip(books, tops, strict=True)
        ]
        view = evaluate_basket(ladders, rates, self.min_edge, stale=stale)
        key = ("neg_risk", event_id)
        episode = self.open.get(key)
        if view is None or not view.arbitrage:
            if episode is not None:
                self._close(key)
            return
        assert view.edge is not None
        if episode is None:
            details = {
                "ask_sum": view.ask_sum,
                "outcomes": len(members),
                "min_edge": self.min_edge,
                "markets": [m.market_id for m in members],
            }
            episode = Episode(
                "neg_risk", event_id, self.clock(), view.edge, view.executable_size, details
            )
            self.open[key] = episode
            self.out_events.append(EpisodeEvent("open", episode))
        else:
            episode.best_edge = max(episode.best_edge, view.edge)
            episode.size = max(episode.size, view.executable_size)

    def _rewatch(self, *tokens: str) -> None:
        """A token's depth changes are reported while a deep pair or basket needs them."""
        for token in tokens:
            entry = self.by_token.get(token)
            needed = entry is not None and (
                entry[0].market_id in self._pair_deep
                or (entry[1] and entry[0].event_id in self._basket_deep)
            )
            if needed:
                self.books.watch.add(token)
            else:
                self.books.watch.discard(token)

    def _close(self, key: tuple[str, str]) -> None:
        episode = self.open.pop(key, None)
        if episode is not None:
            episode.closed_at = self.clock()
            self.out_events.append(EpisodeEvent("close", episode))

    # --- hand-off to the store -------------------------------------------------------
    def take_rows(self) -> list[PriceRow]:
        rows = list(self.pending.values())
        self.pending.clear()
        return rows

    def take_events(self) -> list[EpisodeEvent]:
        events, self.out_events = self.out_events, []
        return events
