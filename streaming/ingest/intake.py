"""Intake: provider events → validated, resolved rows staged for the next flush.

``accept`` runs on the event loop for every event and never raises: a bad event is counted
in ``rejects`` with its reason (``validate``) and skipped. Per-event trades are kept as column
lists; bulk ``TradeBatch`` events are validated and staged as whole columns. Live trades are
handed to the publisher at once (``ticks:trades``), before storage, so latency stays low.
A ``Quote`` is remembered as the quote in force for the symbol's next prints that lack one.
A ``TradeAmendment`` (a venue's correction or cancel) is checked and staged in the
amendment queue behind the prints received before it (``amendments.AmendmentQueue``).
Trades that pass the checks then meet the plausibility band (``plausibility.PriceBand``):
a print far from its symbol's recent prices is held until confirmed, or rejected as
``implausible_price``. Each row carries its provenance (``ticks.source``/``feed``: the
print's own, else its provider's); an equity print of another feed than the one its symbol
is fixed to is rejected as ``feed_mismatch`` (docs/history.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from core import validation as v
from core.candle import Candle
from core.contracts import EQUITY_FEEDS, TickSource
from core.events import Bar, Quote, Rejects, Trade, TradeAmendment
from core.timestamps import MINUTE_NS, NS
from storage.candle_writes import BarRow
from streaming.ingest.amendments import AmendmentQueue, to_row
from streaming.ingest.plausibility import IMPLAUSIBLE, PriceBand
from streaming.ingest.publish import Publisher
from streaming.ingest.rows import TickRows, derived_trade_ids
from streaming.ingest.symbols import SymbolMap
from streaming.providers.base import Provider, TradeBatch

log = logging.getLogger(__name__)
QUOTE_FRESH_NS = 10 * NS  # a quote older than this is not "the quote at the print"

# one print ready to stage: symbol, id, ts ns, trade id, price, size, side, bid, ask,
# exchange, conditions, source, feed (what the plausibility band holds until confirmed)
Row = tuple[
    str, int, int, str | None, float, float, int, float, float, str | None,
    tuple[str, ...] | None, str, str | None,
]  # fmt: skip
FEED_MISMATCH = "feed_mismatch"  # an equity print of another feed than the symbol's own


class Received(Protocol):
    """Where the count of events seen (valid or not) goes: the pipeline's counters."""

    received: int


class _Staging:
    """Per-event trades accumulated as column lists until the next seal."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.sid: list[int] = []
        self.ts: list[int] = []
        self.tid: list[str | None] = []
        self.price: list[float] = []
        self.size: list[float] = []
        self.side: list[int] = []
        self.bid: list[float] = []
        self.ask: list[float] = []
        self.exchange: list[str | None] = []
        self.conditions: list[tuple[str, ...] | None] = []
        self.source: list[str] = []
        self.feed: list[str | None] = []
        self.symbols: list[str] = []

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self) -> TickRows:
        n = len(self.ts)
        sid = np.asarray(self.sid, np.int64)
        ts = np.asarray(self.ts, np.int64)
        price = np.asarray(self.price, np.float64)
        size = np.asarray(self.size, np.float64)
        tid = np.empty(n, object)
        tid[:] = self.tid
        # element-wise on an object array; numpy's stubs refuse None as an operand
        missing = np.flatnonzero(np.equal(tid, None))  # type: ignore[call-overload]
        if missing.size:
            for s in np.unique(sid[missing]):
                idx = missing[sid[missing] == s]
                tid[idx] = derived_trade_ids(ts[idx], price[idx], size[idx])
        exch = np.empty(n, object)
        exch[:] = self.exchange
        cond = np.empty(n, object)
        cond[:] = self.conditions
        source = np.empty(n, object)
        source[:] = self.source
        feed = np.empty(n, object)
        feed[:] = self.feed
        return TickRows(
            sid,
            ts,
            tid,
            price,
            size,
            np.asarray(self.side, np.int8),
            np.asarray(self.bid, np.float64),
            np.asarray(self.ask, np.float64),
            exch,
            cond,
            source,
            feed,
        )


class Intake:
    def __init__(
        self,
        symbols: SymbolMap,
        rejects: Rejects,
        publisher: Publisher,
        counters: Received,
        *,
        clock: Callable[[], int],
        max_age_s: float,
        max_ahead_s: float,
        flush_rows: int,
        on_full: Callable[[], None] = lambda: None,
        band: PriceBand[Row] | None = None,
        amendments: AmendmentQueue | None = None,
    ) -> None:
        self.symbols = symbols
        self.rejects = rejects
        self.publisher = publisher
        self.counters = counters
        self.clock = clock
        self.max_age_s = max_age_s
        self.max_ahead_s = max_ahead_s
        self.flush_rows = flush_rows
        self.on_full = on_full
        self.provider: Provider | None = None
        self._staging = _Staging()
        self._chunks: list[TickRows] = []
        self.staged_rows = 0
        self.bars: list[BarRow] = []
        self._quotes: dict[str, tuple[int, float, float]] = {}
        self.band = band
        self.amendments = amendments

    def take(self) -> TickRows | None:
        """Everything staged since the last call, as one chunk in arrival order."""
        chunks = self._chunks
        if len(self._staging):
            chunks.append(self._staging.rows())
            self._staging.clear()
        self._chunks = []
        self.staged_rows = 0
        return TickRows.concat(chunks) if chunks else None

    def take_bars(self) -> list[BarRow]:
        bars, self.bars = self.bars, []
        return bars

    # --- windows ------------------------------------------------------------------
    def _window(self, bars: bool = False) -> v.Window:
        if self.provider is not None and not self.provider.live:
            return v.Window(math.inf, self.max_ahead_s)
        age = self.max_age_s * (3 if bars else 1)
        return v.Window(age, self.max_ahead_s)

    # --- accept (event loop, synchronous, never raises) ---------------------------
    def accept(self, event: object) -> None:
        try:
            if isinstance(event, Trade):
                self._accept_trade(event)
            elif isinstance(event, TradeBatch):
                self._accept_batch(event)
            elif isinstance(event, Quote):
                self._accept_quote(event)
            elif isinstance(event, Bar):
                self._accept_bar(event)
            elif isinstance(event, TradeAmendment):
                self._accept_amendment(event)
            else:
                self.counters.received += 1
                self.rejects.add(v.MALFORMED, event)
        except Exception as exc:  # a bug or a bizarre object must not stop ingest
            log.debug("event rejected by an unexpected error: %r", exc)
            self.rejects.add(v.MALFORMED, event)

    def _zero_ok(self) -> bool:
        return bool(self.provider is not None and self.provider.zero_size_ok)

    def _accept_trade(self, t: Trade) -> None:
        self.counters.received += 1
        now = self.clock()
        reason = v.check_trade(t, now, self._window(), zero_size_ok=self._zero_ok())
        if reason is not None:
            self.rejects.add(reason, t)
            return
        sid = self.symbols.get(t.symbol)
        if sid is None:
            self.rejects.add(v.UNKNOWN_SYMBOL, t)
            return
        source, feed = self._provenance(t.source, t.feed)
        if not self._feed_ok(t.symbol, feed):
            self.rejects.add(FEED_MISMATCH, t)
            return
        ts = v.ts_ns_of(t.ts)
        assert ts is not None
        bid, ask = v.clean_quote(t.bid), v.clean_quote(t.ask)
        if math.isnan(bid) and math.isnan(ask):
            quote = self._quotes.get(t.symbol)
            if quote is not None and 0 <= ts - quote[0] <= QUOTE_FRESH_NS:
                bid, ask = quote[1], quote[2]
        row: Row = (
            t.symbol, sid, ts, None if t.trade_id in (None, "") else str(t.trade_id),
            float(t.price), float(t.size), t.side or 0, bid, ask, t.exchange or None,
            tuple(str(c) for c in t.conditions) or None, source, feed,
        )  # fmt: skip
        self._offer(row)

    def _provenance(self, source: str | None, feed: str | None) -> tuple[str, str | None]:
        """A print's own provenance, else its provider's (docs/history.md)."""
        provider = self.provider
        if source is None:
            source = provider.tick_source if provider is not None else TickSource.STREAM
        if feed is None and provider is not None:
            feed = provider.feed
        return str(source), feed

    def _feed_ok(self, symbol: str, feed: str | None) -> bool:
        """False for an equity print of another feed than the one the symbol is fixed to:
        a profile never mixes IEX with SIP (docs/history.md)."""
        if feed is None or feed not in EQUITY_FEEDS:
            return True
        fixed = self.symbols.equity_feed(symbol)
        return fixed is None or fixed == feed

    def _offer(self, row: Row) -> None:
        """Through the plausibility band (when on) to staging."""
        if self.band is None:
            self._stage_row(row)
            return
        accepted, rejected = self.band.offer(row[0], row[4], row)
        for held in rejected:
            self.rejects.add(IMPLAUSIBLE, held)
        for ok in accepted:
            self._stage_row(ok)

    def drain_held(self) -> int:
        """Reject the prints the band still holds unconfirmed (at shutdown); their count."""
        held = self.band.drain() if self.band is not None else []
        for row in held:
            self.rejects.add(IMPLAUSIBLE, row)
        return len(held)

    def _stage_row(self, row: Row) -> None:
        symbol, sid, ts, tid, price, size, side, bid, ask, exchange, conditions, source, feed = row
        st = self._staging
        st.sid.append(sid)
        st.ts.append(ts)
        st.tid.append(tid)
        st.price.append(price)
        st.size.append(size)
        st.side.append(side)
        st.bid.append(bid)
        st.ask.append(ask)
        st.exchange.append(exchange)
        st.conditions.append(conditions)
        st.source.append(source)
        st.feed.append(feed)
        self._after_stage(1)
        self.publisher.note_trade(symbol, ts, price, size, side or None)

    def _accept_batch(self, b: TradeBatch) -> None:
        n = len(b)
        self.counters.received += n
        if n == 0:
            return
        sid = self.symbols.get(b.symbol) if isinstance(b.symbol, str) else None
        if sid is None:
            self.rejects.add(v.UNKNOWN_SYMBOL, f"{b.symbol!r} batch of {n}")
            self.rejects.counts[v.UNKNOWN_SYMBOL] += n - 1
            return
        if not self._feed_ok(b.symbol, self._provenance(None, None)[1]):
            self.rejects.add(FEED_MISMATCH, f"{b.symbol!r} batch of {n}")
            self.rejects.counts[FEED_MISMATCH] += n - 1
            return
        ts = np.asarray(b.ts_ns, np.int64)
        price = np.asarray(b.price, np.float64)
        size = np.asarray(b.size, np.float64)
        keep, reasons = v.check_columns(
            ts, price, size, self.clock(), self._window(), zero_size_ok=self._zero_ok()
        )
        for reason, idx in reasons.items():
            i = int(idx[0])
            self.rejects.add(reason, (b.symbol, int(ts[i]), float(price[i]), float(size[i])))
            self.rejects.counts[reason] += idx.size - 1
        deferred = np.zeros(0, np.int64)
        if self.band is not None and keep.any():
            idx = np.flatnonzero(keep)
            plausible, defer = self.band.judge_batch(b.symbol, price[idx])
            if not plausible.all():
                out = idx[~plausible & ~defer]
                if out.size:
                    i = int(out[0])
                    self.rejects.add(IMPLAUSIBLE, (b.symbol, int(ts[i]), float(price[i])))
                    self.rejects.counts[IMPLAUSIBLE] += out.size - 1
                deferred = idx[defer]
                keep[idx[~plausible]] = False
        self._stage_batch(b, sid, keep, ts, price, size)
        for i in deferred.tolist():  # too few to judge as a block: one by one
            self._offer(self._batch_row(b, sid, int(i)))

    def _batch_row(self, b: TradeBatch, sid: int, i: int) -> Row:
        def at(arr: np.ndarray | None, default: float) -> float:
            return default if arr is None else float(arr[i])

        side = int(np.nan_to_num(at(b.side, 0.0)))
        tid = None if b.trade_id is None or b.trade_id[i] in (None, "") else str(b.trade_id[i])
        return (
            b.symbol, sid, int(b.ts_ns[i]), tid, float(b.price[i]), float(b.size[i]),
            side if side in (1, -1) else 0, at(b.bid, math.nan), at(b.ask, math.nan),
            b.exchange, None, *self._provenance(None, None),
        )  # fmt: skip

    def _stage_batch(
        self,
        b: TradeBatch,
        sid: int,
        keep: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
    ) -> None:
        """The kept rows of a batch as one column chunk."""
        if not keep.all():
            ts, price, size = ts[keep], price[keep], size[keep]
        m = ts.shape[0]
        if m == 0:
            return

        def col(arr: np.ndarray | None, dtype: type, fill: float) -> np.ndarray:
            if arr is None:
                return np.full(m, fill, dtype)
            a: np.ndarray = np.asarray(arr, dtype)
            return a if keep.all() else a[keep]

        bid = col(b.bid, np.float64, math.nan)
        ask = col(b.ask, np.float64, math.nan)
        side = np.nan_to_num(col(b.side, np.float64, 0.0)).astype(np.int8)
        side[(side != 1) & (side != -1)] = 0
        if b.trade_id is None:
            tid = derived_trade_ids(ts, price, size)
        else:
            tid = np.asarray(b.trade_id, object)
            tid = tid if keep.all() else tid[keep]
            # as above: element-wise on an object array, None refused by the stubs only
            missing = np.flatnonzero(np.equal(tid, None) | np.equal(tid, ""))  # type: ignore[call-overload]
            if missing.size:
                tid = tid.copy()
                tid[missing] = derived_trade_ids(ts[missing], price[missing], size[missing])
        exch = np.full(m, b.exchange, object)
        cond = np.full(m, None, object)
        source, feed = self._provenance(None, None)
        rows = TickRows(
            np.full(m, sid, np.int64), ts, tid, price, size, side, bid, ask, exch, cond,
            np.full(m, source, object), np.full(m, feed, object),
        )  # fmt: skip
        self._chunks.append(rows)
        self._after_stage(m)
        last = m - 1
        s = int(side[last])
        self.publisher.note_trade(
            b.symbol, int(ts[last]), float(price[last]), float(size[last]), s or None, m
        )

    def _accept_quote(self, q: Quote) -> None:
        reason = v.check_quote(q)
        if reason is not None:
            self.counters.received += 1
            self.rejects.add(reason, q)
            return
        ts = v.ts_ns_of(q.ts)
        assert ts is not None
        self._quotes[q.symbol] = (ts, float(q.bid), float(q.ask))

    def _accept_bar(self, bar: Bar) -> None:
        self.counters.received += 1
        reason = v.check_bar(bar, self.clock(), self._window(bars=True))
        if reason is not None:
            self.rejects.add(reason, bar)
            return
        sid = self.symbols.get(bar.symbol)
        if sid is None:
            self.rejects.add(v.UNKNOWN_SYMBOL, bar)
            return
        ts = v.ts_ns_of(bar.ts)
        assert ts is not None
        minute = ts - ts % MINUTE_NS
        self.bars.append(
            (sid, minute, float(bar.open), float(bar.high), float(bar.low), float(bar.close),
             float(bar.volume), int(bar.trade_count or 0))
        )  # fmt: skip
        self.publisher.note_candle(
            bar.symbol,
            Candle(sid, minute, float(bar.open), float(bar.high), float(bar.low),
                   float(bar.close), float(bar.volume), 0, 0.0, minute, minute),
        )  # fmt: skip
        self.on_full()

    def _accept_amendment(self, a: TradeAmendment) -> None:
        self.counters.received += 1
        reason = v.check_amendment(a)
        if reason is not None or self.amendments is None:
            self.rejects.add(reason or v.BAD_AMENDMENT, a)
            return
        sid = self.symbols.get(a.symbol)
        if sid is None:
            self.rejects.add(v.UNKNOWN_SYMBOL, a)
            return
        self.amendments.stage(to_row(a, sid))

    def _after_stage(self, n: int) -> None:
        self.staged_rows += n
        if self.staged_rows >= self.flush_rows:
            self.on_full()
