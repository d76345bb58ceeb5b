"""One UTC day of trades from Alpaca into ``ticks``: the one code path of the ``tick_history``
asset and ``marketflow backfill`` (docs/history.md).

For each symbol the day's window is [00:00, 24:00) UTC (up to now for today). A symbol
whose progress says the day is complete is not asked again; one that stopped part-way asks
from its resume point. Symbols that start at the same instant share a multi-symbol request.
Pages are fetched, parsed and encoded on a worker thread at most ``PREFETCH_PAGES`` ahead
while writer connections COPY them (``storage.tick_writer``; the exact keys make a page
fetched twice store nothing twice); a symbol's resume point moves only once every earlier
page is committed, so a day that fails part-way resumes from what is stored.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

from core.contracts import CRYPTO_FEED, TickSource
from core.timestamps import NS, to_datetime
from storage.binary_copy import EncodedRows, encode
from storage.history_progress import advance, read_progress
from storage.queries import record_rejects
from storage.symbols import row_size_for_price
from storage.tick_writer import TickWriter
from streaming.history.report import DayReport
from streaming.history.symbols import HistorySymbol
from streaming.history.writers import OrderedWriters
from streaming.ingest.rows import TickRows
from streaming.venues.alpaca import trade_pages
from streaming.venues.alpaca.rest import (
    AlpacaRestClient,
    AssetClass,
    RestError,
    TradesQuery,
    chunks,
)

log = logging.getLogger(__name__)

PREFETCH_PAGES = 2  # pages parsed ahead of the writer: enough to overlap, little memory
SYMBOLS_PER_REQUEST = 100  # a request's URL stays short
SOURCE = TickSource.BACKFILL.value

# (symbols finished, new rows stored) after each page and each finished request
OnProgress = Callable[[int, int], None]


def day_window(day: date, now: datetime) -> tuple[datetime, datetime, bool]:
    """[start, end) of ``day`` in UTC, cut at ``now``; and whether the day is over."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    return start, min(end, now), end <= now


@dataclass(frozen=True)
class _Group:
    asset_class: AssetClass
    since: datetime
    symbols: tuple[HistorySymbol, ...]


@dataclass
class _Page:
    """A page ready for the writer: its rows encoded for COPY, and what they move."""

    page: trade_pages.TradesPage
    rows: int
    encoded: EncodedRows | None
    resume: dict[int, datetime]  # symbol id → its newest print in the page
    fetched: dict[int, int]  # symbol id → its kept prints
    median_price: dict[str, float]  # symbol → the page's median price (row sizes)


class _Prefetch:
    """The pages of one query fetched, parsed and encoded on a worker thread, handed over
    in order. ``close()`` stops the worker (its client's waits end at once)."""

    def __init__(
        self,
        client: AlpacaRestClient,
        query: TradesQuery,
        read: trade_pages.PageReader,
        prepare: Callable[[trade_pages.TradesPage], _Page],
        stop: threading.Event,
    ) -> None:
        self._pages: queue.Queue[object] = queue.Queue(maxsize=PREFETCH_PAGES)
        self._stop = stop
        self._args = (client, query, read, prepare)
        self._thread = threading.Thread(target=self._run, name="history-fetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client, query, read, prepare = self._args
        try:
            for page in client.pages(query, read):
                if not self._put(prepare(page)):
                    return
        except BaseException as exc:  # handed to the writer's thread, raised there
            self._put(exc)
            return
        self._put(None)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[_Page]:
        while True:
            item = self._pages.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, _Page)
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


class DayBackfill:
    """Fetches days for one feed through one REST client.

    ``conn`` (autocommit) reads and moves the progress; each page's rows go out as one
    binary COPY stream (``storage.binary_copy``) on one of ``writer_conns`` (autocommit),
    several at once (``writers.OrderedWriters``)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        writer_conns: Sequence[psycopg.Connection],
        client: AlpacaRestClient,
        stop: threading.Event,
        *,
        feed: str,
        created: set[str] | None = None,
        on_progress: OnProgress | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conn = conn
        self.client = client
        self.stop = stop
        self.feed = feed
        self.created = set(created or ())  # symbols whose row size their prices decide
        self.on_progress = on_progress or (lambda symbols, rows: None)
        self.clock = clock
        self.writers = [TickWriter(c, source=SOURCE) for c in writer_conns]

    def feed_of(self, asset_class: AssetClass) -> str:
        return self.feed if asset_class is AssetClass.STOCKS else CRYPTO_FEED

    def run(self, day: date, symbols: Sequence[HistorySymbol]) -> DayReport:
        """Fetch and store ``day`` for ``symbols``; raises when the venue stays unavailable
        (what was stored stays, and a re-run resumes) or refuses a request for good."""
        started = time.monotonic()
        report = DayReport(day, self.feed, symbols=[s.symbol for s in symbols])
        before = self.client.counters.as_dict()
        self.client.rejects = report.rejects
        start, end, over = day_window(day, self.clock())
        if end <= start:
            return report  # a day that has not begun: nothing to ask
        progress = read_progress(self.conn, day, [s.symbol_id for s in symbols])
        groups: dict[tuple[AssetClass, datetime], list[HistorySymbol]] = {}
        for sym in symbols:
            done = progress.get(sym.symbol_id)
            same_feed = done is not None and done.feed == self.feed_of(sym.asset_class)
            if same_feed and done is not None and done.complete:
                report.already_complete.append(sym.symbol)
                continue
            since = start
            if same_feed and done is not None and done.resume_from > start:
                since = done.resume_from
                report.resumed[sym.symbol] = since.isoformat()
            groups.setdefault((sym.asset_class, since), []).append(sym)
        self.on_progress(len(report.already_complete), 0)
        try:
            for (asset_class, since), members in groups.items():
                for part in chunks(members, SYMBOLS_PER_REQUEST):
                    group = _Group(asset_class, since, part)
                    self._fetch_group(day, group, end, over, report)
        finally:
            after = self.client.counters.as_dict()
            for name, value in after.items():
                setattr(report.rest, name, value - before[name])
            report.elapsed_s = time.monotonic() - started
            if report.rejects.counts:
                try:
                    record_rejects(self.conn, report.rejects)
                except psycopg.Error as exc:  # the day's own error, if any, says more
                    log.warning("history %s: rejects not recorded (%s)", day, exc)
        return report

    def _fetch_group(
        self, day: date, group: _Group, end: datetime, over: bool, report: DayReport
    ) -> None:
        try:
            self._fetch(day, group, end, over, report)
        except RestError as exc:
            if exc.status in (401, 403, 404):
                raise  # credentials, plan or URL: no symbol can do better
            if len(group.symbols) > 1:
                # one name Alpaca refuses fails a multi-symbol request: ask for each alone
                for sym in group.symbols:
                    alone = _Group(group.asset_class, group.since, (sym,))
                    self._fetch_group(day, alone, end, over, report)
                return
            symbol = group.symbols[0].symbol
            report.refused[symbol] = str(exc)
            log.error("history %s: %s refused by Alpaca: %s", day, symbol, exc)

    def _fetch(
        self, day: date, group: _Group, end: datetime, over: bool, report: DayReport
    ) -> None:
        by_name = {s.alpaca: s for s in group.symbols}
        query = TradesQuery(
            group.asset_class,
            tuple(by_name),
            group.since,
            end,
            feed=self.feed if group.asset_class is AssetClass.STOCKS else None,
        )
        names = {name: s.symbol for name, s in by_name.items()}
        ids = {s.symbol: s.symbol_id for s in group.symbols}
        window = (int(group.since.timestamp() * NS), int(end.timestamp() * NS))
        feed = self.feed_of(group.asset_class)
        rejects = report.rejects

        def read(body: bytes) -> trade_pages.TradesPage:
            return trade_pages.read_page(body, names, rejects, window)

        def prepare(page: trade_pages.TradesPage) -> _Page:
            return _prepare(page, ids, feed)

        def write(writer: TickWriter, ready: _Page) -> int:
            assert ready.encoded is not None
            # every row lies in the day's window: its partition is the only one
            return writer.write_rows(ready.encoded, {day})[0]

        stop = threading.Event()
        self.client.sleep = _stoppable_sleep(stop, self.stop)
        pages = _Prefetch(self.client, query, read, prepare, stop)
        writers: OrderedWriters[_Page] = OrderedWriters(self.writers)
        try:
            for ready in pages:
                report.received += ready.page.received
                for reason, count in ready.page.flagged.items():
                    report.flagged[reason] = report.flagged.get(reason, 0) + count
                for symbol, price in ready.median_price.items():
                    if symbol in self.created:
                        self._size_rows(symbol, price)
                if ready.encoded is None:
                    continue
                report.kept += ready.rows
                for page, inserted in writers.submit(ready, write):
                    self._committed(day, feed, page, inserted, report)
            for page, inserted in writers.done():
                self._committed(day, feed, page, inserted, report)
        except BaseException:
            # the pages stored before the failure move their resume points all the same,
            # up to the first write that failed
            with contextlib.suppress(Exception):
                for page, inserted in writers.done():
                    self._committed(day, feed, page, inserted, report)
            raise
        finally:
            writers.close()
            pages.close()
        since = {s.symbol_id: group.since for s in group.symbols}
        with self.conn.transaction():
            advance(self.conn, day, feed, since, {}, complete=since if over else ())
        report.fetched.extend(s.symbol for s in group.symbols)
        if over:
            report.complete.extend(s.symbol for s in group.symbols)
        self.on_progress(len(group.symbols), 0)

    def _committed(
        self, day: date, feed: str, page: _Page, inserted: int, report: DayReport
    ) -> None:
        """A page is stored and so is every page before it: move its resume points."""
        with self.conn.transaction():
            advance(self.conn, day, feed, page.resume, page.fetched)
        report.stored += inserted
        self.on_progress(0, inserted)

    def _size_rows(self, symbol: str, price: float) -> None:
        """A symbol this backfill created gets its profile row size from its first prices
        (the rule replay uses, docs/signal-marts.md)."""
        with self.conn.transaction():
            self.conn.execute(
                "update symbols set row_size = %s, updated_at = now() where symbol = %s",
                (row_size_for_price(price), symbol),
            )
        self.created.discard(symbol)


def _prepare(page: trade_pages.TradesPage, ids: dict[str, int], feed: str) -> _Page:
    """A page's rows for the writer (on the fetch thread: encoding is column work)."""
    parts, resume, fetched, median = [], {}, {}, {}
    for trades in page.symbols:
        symbol_id = ids[trades.symbol]
        parts.append(_tick_rows(trades, symbol_id, feed))
        resume[symbol_id] = to_datetime(int(trades.ts_ns.max()))
        fetched[symbol_id] = len(trades)
        median[trades.symbol] = float(np.median(trades.price))
    rows = TickRows.concat(parts) if parts else None
    encoded = encode(rows) if rows is not None else None
    return _Page(page, len(rows) if rows is not None else 0, encoded, resume, fetched, median)


def _tick_rows(trades: trade_pages.SymbolTrades, symbol_id: int, feed: str) -> TickRows:
    n = len(trades)
    nan = np.full(n, np.nan)
    return TickRows(
        np.full(n, symbol_id, np.int64), trades.ts_ns, trades.trade_id, trades.price,
        trades.size, trades.side, nan, nan, trades.exchange, trades.conditions,
        np.full(n, SOURCE, object), np.full(n, feed, object),
    )  # fmt: skip


def _stoppable_sleep(*stops: threading.Event) -> Callable[[float], bool]:
    """A client's wait that ends early (True) when any of ``stops`` is set."""

    def sleep(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not any(s.is_set() for s in stops):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.1))
        return True

    return sleep
