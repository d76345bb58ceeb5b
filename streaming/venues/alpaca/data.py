"""Alpaca real-time trades (PROVIDER=alpaca_ws): the stock stream (``/v2/{feed}``) and the
crypto stream (``/v1beta3/crypto/us``) beside it, each with its REST gap fill.

Each symbol goes to the stream of its kind (``feeds.split_symbols``: pairs written
``BTC/USD`` to crypto, the rest to stocks); the two run as independent sessions into one
queue. Corrections (``T: c``) and cancels (``T: x``) of stock prints are yielded as
``TradeAmendment`` events for ingest to apply (docs/corrections.md).

The stream is spoken directly over ``websockets`` in msgpack, exactly as alpaca-py's
``StockDataStream`` speaks it (same headers, auth and subscribe messages), because
``StockDataStream`` cannot express what ingestion needs: it only logs error frames (so a 406,
402 or 409 cannot be acted on), reconnects internally without a hook (so a gap cannot be
filled) and takes about 5 s to stop. Gap fill uses the venue's REST trades client
(``rest.py``, through ``gap_fill.py``).

Exactly once: after every reconnect the historical trades API is asked for everything since
the stream's last known time (minus a small overlap); the live stream and the gap fill are
merged through one ``TradeDeduper`` keyed on (symbol, exchange-trade id). The stream's clock
moves only on a trade that ingest's checks accept (``core.validation``), and
never past the wall clock: one print stamped in the future must not move the gap fill's
start beyond the prints an outage loses. The REST paging itself is ``gap_fill.py``. Stream
prints are ``stream`` ticks of their stream's feed (the equity feed, or ``crypto_us``),
gap-fill prints ``gap_fill`` ones (docs/history.md). While a gap fill is pending,
amendments wait, so a correction never reaches ingest before the print it corrects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import websockets
from websockets.asyncio.client import connect

from analytics.sessions import load_calendar
from core.contracts import CRYPTO_FEED
from core.events import Quote, Trade, TradeAmendment
from core.validation import Window, check_trade
from streaming.providers.base import MissingCredential, Provider, ProviderError
from streaming.queue_wait import Woken, get_or_wake
from streaming.venues.alpaca import parsing
from streaming.venues.alpaca.assets import crypto_symbol_info
from streaming.venues.alpaca.feeds import (
    CRYPTO,
    STOCKS,
    Feed,
    always_open,
    build_feeds,
    xnys_open,
)
from streaming.venues.alpaca.frames import StreamItem, read_frame
from streaming.venues.alpaca.gap_fill import GAP_FILL_PAGE_LIMIT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.events import Event
    from core.settings import Settings
    from streaming.providers.base import TradeBatch

log = logging.getLogger(__name__)
# websockets logs every frame it sends at DEBUG (``marketflow -v``), the auth frame with the
# key and secret included: its own logger, never below INFO
WS_LOG = logging.getLogger(f"{__name__}.websockets")
WS_LOG.setLevel(logging.INFO)

HANDSHAKE_TIMEOUT_S = 10.0
QUEUE_SIZE = 50_000  # events between the socket/gap fill and the consumer


class _SessionEnded(Exception):
    """The session must be replaced (error frame, silence, closed socket)."""


class _SlotBusy(Exception):
    """Alpaca 406: another session holds the account's stream slot."""


class _Reconnected:
    """Queue marker: a new session began, quotes from the old one no longer hold."""


class _GapFilled:
    """Queue marker: every print of the gap fill from ``since`` has been queued before it."""

    def __init__(self, since: datetime) -> None:
        self.since = since


class AlpacaStreamProvider(Provider):
    name = "alpaca_ws"

    def __init__(
        self,
        settings: Settings,
        symbols: Sequence[str],
        *,
        market_open: Callable[[datetime], bool] = xnys_open,
        crypto_market_open: Callable[[datetime], bool] = always_open,
        emit_quotes: bool = False,
        queue_size: int = QUEUE_SIZE,
        gap_page_limit: int = GAP_FILL_PAGE_LIMIT,
    ) -> None:
        super().__init__(symbols)
        if settings.alpaca_api_key is None or settings.alpaca_secret_key is None:
            missing = []
            if settings.alpaca_api_key is None:
                missing.append("ALPACA_API_KEY (or APCA_API_KEY_ID)")
            if settings.alpaca_secret_key is None:
                missing.append("ALPACA_SECRET_KEY (or APCA_API_SECRET_KEY)")
            raise MissingCredential(self.name, *missing)
        if not self.symbols:
            raise ProviderError("alpaca_ws needs at least one symbol: set SYMBOLS")
        self._settings = settings
        self._key = settings.alpaca_api_key
        self._secret = settings.alpaca_secret_key
        self.feed = settings.alpaca_feed.strip().lower()
        if self.feed not in parsing.FEEDS:
            raise ProviderError(
                f"ALPACA_FEED={settings.alpaca_feed!r} is not a feed: use one of "
                + ", ".join(parsing.FEEDS)
            )
        self.silence_s = settings.alpaca_silence_seconds
        self.slot_wait_s = settings.alpaca_slot_wait_seconds
        self.overlap = timedelta(seconds=settings.alpaca_backfill_overlap_seconds)
        self._emit_quotes = emit_quotes
        self._queue: asyncio.Queue[StreamItem | _Reconnected | _GapFilled] = asyncio.Queue(
            maxsize=queue_size
        )
        self._dedupe = parsing.TradeDeduper()
        self._fills_pending = 0  # gap fills whose prints are not all consumed yet
        # an old print never moves a maximum forward: only the future bound matters here
        self._valid = Window(math.inf, settings.ingest_max_ahead_s)
        self._tasks: set[asyncio.Task[None]] = set()
        self.feeds = build_feeds(
            self,
            symbols,
            settings,
            self._queue.put,
            {STOCKS: market_open, CRYPTO: crypto_market_open},
            gap_page_limit,
        )
        self.url = self.feeds[0].url
        # the provenance default (ticks.feed): the equity feed, or crypto_us for pairs only
        if all(f.kind == CRYPTO for f in self.feeds):
            self.feed = CRYPTO_FEED
        self.counters.update(
            connections=0,
            reconnects=0,
            trades=0,
            quotes=0,
            gap_fill_trades=0,
            duplicates=0,
            slot_busy=0,
            silence_reconnects=0,
            gap_fill_failures=0,
            gap_fill_pages=0,
            trades_received=0,
            corrections=0,
            cancels=0,
        )

    async def prepare(self) -> None:
        """Crypto pairs: their increments and profile bin from Alpaca (``assets.py``)."""
        pairs = {
            p: parsing.alpaca_symbol(p) for f in self.feeds if f.kind == CRYPTO for p in f.symbols
        }
        if not pairs:
            return
        found = await asyncio.to_thread(crypto_symbol_info, self._settings, list(pairs.values()))
        for pair, wire in pairs.items():
            self.symbol_info.setdefault(pair, {}).update(found.get(wire, {}))

    # --- the iterator ---------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        if any(f.market_open is xnys_open for f in self.feeds):
            await asyncio.to_thread(load_calendar, "XNYS")  # ~0.5 s, off the event loop
        runner = asyncio.create_task(self._run_feeds(), name="alpaca-sessions")
        stopped = asyncio.create_task(self._stop.wait())
        quotes: dict[str, Quote] = {}
        held: list[TradeAmendment] = []  # amendments waiting for a pending gap fill
        try:
            while True:
                if self._queue.empty() and runner.done():
                    if not runner.cancelled() and runner.exception() is not None:
                        # not None: checked on the line above
                        raise runner.exception()  # type: ignore[misc]
                    return
                item = await get_or_wake(self._queue, stopped, runner)
                if isinstance(item, Woken):
                    if stopped.done():
                        return
                    continue
                if isinstance(item, _Reconnected):
                    quotes.clear()
                elif isinstance(item, _GapFilled):
                    self._dedupe.release(item.since)
                    self._fills_pending -= 1
                    if self._fills_pending == 0:
                        for amendment in held:
                            yield amendment
                        held.clear()
                elif isinstance(item, TradeAmendment):
                    if self._fills_pending:
                        held.append(item)  # its print may still be on a REST page
                    else:
                        yield item
                elif isinstance(item, Quote):
                    quotes[item.symbol] = item
                    if self._emit_quotes:
                        yield item
                elif isinstance(item, Trade):
                    if not self._dedupe.first_time(item):
                        self.counters["duplicates"] += 1
                        continue
                    quote = quotes.get(item.symbol)
                    if quote is not None and item.bid is None:
                        item.bid, item.ask = quote.bid, quote.ask
                    self.counters["trades"] += 1
                    yield item
        finally:
            for task in (runner, stopped, *self._tasks):
                task.cancel()
            for task in (runner, stopped, *self._tasks):
                with contextlib.suppress(BaseException):
                    await task

    async def aclose(self) -> None:
        self.stop()
        for feed in self.feeds:
            with contextlib.suppress(Exception):
                feed.gaps.close()

    # --- sessions -------------------------------------------------------------------------

    async def _run_feeds(self) -> None:
        """Every stream's session loop; a fatal error of one ends the provider."""
        await asyncio.gather(*(self._run(feed) for feed in self.feeds))

    async def _run(self, feed: Feed) -> None:
        while not self.stopping:
            delay: float
            try:
                await self._session(feed)
                delay = feed.backoff.next_delay()
            except _SlotBusy:
                self.counters["slot_busy"] += 1
                delay = self.slot_wait_s + feed.backoff.next_delay()
                log.warning(
                    "%s: 406 connection limit exceeded: another session (another "
                    "ingest process, a notebook, a second PROVIDER=router) holds this "
                    "account's only stream slot; retrying in %.0f s",
                    feed.name,
                    delay,
                )
            except ProviderError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException, _SessionEnded) as exc:
                delay = feed.backoff.next_delay()
                log.warning(
                    "%s: stream lost (%s); reconnecting in %.1f s",
                    feed.name,
                    parsing.describe_error(exc),
                    delay,
                )
            if await self.sleep(delay):
                return

    async def _session(self, feed: Feed) -> None:
        headers = {"Content-Type": "application/msgpack"}
        host = urlparse(feed.url).hostname or ""
        proxy: Any = None if host in ("127.0.0.1", "localhost", "::1") else True
        async with connect(
            feed.url,
            additional_headers=headers,
            open_timeout=HANDSHAKE_TIMEOUT_S,
            ping_interval=10,
            ping_timeout=30,
            max_size=None,
            max_queue=64,
            proxy=proxy,
            logger=WS_LOG,
        ) as ws:
            await self._handshake(ws, feed)
            if feed.first_connect_at is None:
                feed.first_connect_at = datetime.now(UTC)
            else:
                # everything after the stream's last known time may have been missed
                self.counters["reconnects"] += 1
                since = (feed.clock or feed.first_connect_at) - self.overlap
                self._dedupe.hold(since)
                self._fills_pending += 1
                self._spawn(self._gap_fill(feed, since))
            self.counters["connections"] += 1
            await self._queue.put(_Reconnected())
            log.info(
                "%s: streaming %d symbols from %s%s",
                feed.name,
                len(feed.symbols),
                feed.url,
                f" (feed {self.feed})" if feed.kind == STOCKS else "",
            )
            await self._read(ws, feed)

    async def _handshake(self, ws: Any, feed: Feed) -> None:
        first = await self._recv_control(ws)
        if first.get("T") != "success" or first.get("msg") != "connected":
            raise _SessionEnded(f"unexpected greeting {first.get('T')}")
        await ws.send(
            parsing.auth_message(self._key.get_secret_value(), self._secret.get_secret_value())
        )
        answer = await self._recv_control(ws)
        if answer.get("T") != "success" or answer.get("msg") != "authenticated":
            raise _SessionEnded(f"unexpected auth answer {answer.get('T')}")
        await ws.send(parsing.subscribe_message(feed.wire_symbols))

    async def _recv_control(self, ws: Any) -> dict[str, Any]:
        raw = await asyncio.wait_for(ws.recv(), HANDSHAKE_TIMEOUT_S)
        try:
            messages = parsing.decode_frame(raw)
        except ValueError as exc:
            self.rejects.add("malformed_frame", raw[:200])
            raise _SessionEnded(str(exc)) from None
        for msg in messages:
            if isinstance(msg, dict) and msg.get("T") == "error":
                self._on_error(msg)
        if not messages or not isinstance(messages[0], dict):
            raise _SessionEnded("empty control frame")
        return messages[0]

    async def _read(self, ws: Any, feed: Feed) -> None:
        last_data = time.monotonic()
        flowed = False
        while not self.stopping:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except TimeoutError:
                silent = time.monotonic() - last_data
                if silent >= self.silence_s and feed.market_open(datetime.now(UTC)):
                    self.counters["silence_reconnects"] += 1
                    raise _SessionEnded(
                        f"no data for {silent:.0f} s while its market trades (silence watchdog)"
                    ) from None
                continue
            events = self._parse_frame(raw, feed)
            if events:
                last_data = time.monotonic()
                if not flowed:
                    flowed = True
                    feed.backoff.reset()  # a session that delivered data is a success
            for event in events:
                await self._queue.put(event)

    def _parse_frame(self, raw: bytes | str, feed: Feed | None = None) -> list[StreamItem]:
        """The events of one frame (``frames.read_frame``); each valid print moves its
        stream's clock."""
        events = read_frame(raw, self.counters, self.rejects, self._on_error)
        if feed is not None:
            for event in events:
                if isinstance(event, Trade):
                    event.feed = feed.tape  # provenance: this stream's tape
                    self._advance_clock(feed, event)
        return events

    def _advance_clock(self, feed: Feed, trade: Trade) -> None:
        """The gap fill's start: the newest time of a print ingest accepts, at most now."""
        if check_trade(trade, time.time_ns(), self._valid) is not None:
            return
        ts = min(trade.ts, datetime.now(UTC))
        if feed.clock is None or ts > feed.clock:
            feed.clock = ts

    def _on_error(self, msg: dict[str, Any]) -> None:
        code, text = msg.get("code"), msg.get("msg")
        action, setting = parsing.classify_error(code)
        if action is parsing.ErrorAction.FATAL:
            message = parsing.fatal_message(
                code, text, setting or "the Alpaca settings", self.feed or ""
            )
            log.error("alpaca_ws: %s", message)
            raise ProviderError(message)
        if action is parsing.ErrorAction.SLOT_BUSY:
            raise _SlotBusy()
        if action is parsing.ErrorAction.RECONNECT:
            raise _SessionEnded(f"error frame {code} {text}")
        log.info("alpaca_ws: ignored error frame %s %s", code, text)

    # --- gap fill -------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _gap_fill(self, feed: Feed, since: datetime) -> None:
        await feed.gaps.fill(since, feed.symbols, feed.asset_class)
        # queued after its prints: the deduper holds their window until they are consumed
        await self._queue.put(_GapFilled(since))


def build(settings: Settings, symbols: list[str]) -> AlpacaStreamProvider:
    return AlpacaStreamProvider(settings, symbols)


__all__ = ["AlpacaStreamProvider", "build", "xnys_open"]
