"""Alpaca REST gap fill: after a reconnect, every print since the stream's last known time,
through the one REST trades client (``rest.AlpacaRestClient``, stocks or crypto).

Bounded memory: the gap fill walks the API one page at a time and queues each page before
asking for the next, so a long outage costs at most one page in hand plus the provider's
bounded queue, never the whole outage (its ``put`` is the backpressure). Pages come in the
API's order, symbol by symbol and in time within a symbol; the client retries a failed page
from its own token and waits out rate limits. Prints are marked ``gap_fill`` with the
stream's feed (docs/history.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from pydantic import SecretStr

from core.contracts import CRYPTO_FEED, TickSource
from core.events import Trade
from streaming.providers.base import Provider
from streaming.venues.alpaca import parsing, trade_pages
from streaming.venues.alpaca.rest import (
    AlpacaRestClient,
    AssetClass,
    RestError,
    RestUnavailable,
    Stopped,
    TradesQuery,
)

log = logging.getLogger(__name__)

GAP_FILL_PAGE_LIMIT = 1_000  # prints per REST page (the API allows up to 10 000)
GAP_FILL_ATTEMPTS = 5  # per page: a failed page is retried from its own page token


class GapFiller:
    """The REST side of an Alpaca stream provider: ``fill(since)`` hands every print since
    ``since`` to ``put``, counting on the provider's counters and rejects and stopping with
    it."""

    def __init__(
        self,
        owner: Provider,
        put: Callable[[Trade], Awaitable[None]],
        *,
        key: SecretStr,
        secret: SecretStr,
        data_url: str | None,
        feed: str,
        page_limit: int = GAP_FILL_PAGE_LIMIT,
    ) -> None:
        self.owner = owner
        self._put = put
        self.feed = feed
        self.page_limit = page_limit
        self.client = AlpacaRestClient(
            key,
            secret,
            data_url=data_url,
            attempts=GAP_FILL_ATTEMPTS,
            sleep=self._sleep,
            rejects=owner.rejects,
        )

    def close(self) -> None:
        """Close the REST client's HTTP connections."""
        self.client.close()

    def _sleep(self, seconds: float) -> bool:
        """The client's waits (in its worker thread), cut short when the provider stops."""
        end = time.monotonic() + seconds
        while not self.owner.stopping:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.1))
        return True

    async def fill(
        self,
        since: datetime,
        symbols: Sequence[str] | None = None,
        asset_class: AssetClass = AssetClass.STOCKS,
    ) -> None:
        """Queue every print of ``symbols`` (stored names; default the provider's) since
        ``since``, one REST page at a time."""
        stored = list(symbols if symbols is not None else self.owner.symbols)
        crypto = asset_class is AssetClass.CRYPTO
        names = {parsing.alpaca_symbol(s) if crypto else s: s for s in stored}
        query = TradesQuery(
            asset_class,
            tuple(names),
            since,
            feed=self.feed if asset_class is AssetClass.STOCKS else None,
            limit=self.page_limit,
        )
        feed = self.feed if asset_class is AssetClass.STOCKS else CRYPTO_FEED
        rejects = self.owner.rejects

        def read(body: bytes) -> trade_pages.TradesPage:
            return trade_pages.read_page(body, names, rejects)

        total, token = 0, None
        try:
            while True:
                page = await asyncio.to_thread(self.client.page, query, token, read)
                trades = [t for s in page.symbols for t in s.to_trades(TickSource.GAP_FILL, feed)]
                trades.sort(key=lambda t: (t.symbol, t.ts))  # the API's order, made certain
                for trade in trades:
                    await self._put(trade)  # blocks while the consumer is behind
                total += len(trades)
                self.owner.counters["gap_fill_trades"] += len(trades)
                self.owner.counters["gap_fill_pages"] += 1
                next_token = page.next_page_token
                if next_token is not None and next_token == token:
                    # a server repeating a page would keep the gap fill busy forever
                    log.error("alpaca_ws: gap fill got page token %r twice; stopped", next_token)
                    break
                token = next_token
                if token is None:
                    log.info(
                        "alpaca_ws: gap fill since %s: %d prints from the REST API (duplicates "
                        "of streamed prints are dropped)",
                        since.isoformat(),
                        total,
                    )
                    return
        except Stopped:
            return
        except (RestUnavailable, RestError) as exc:
            if self.owner.stopping:
                return
            log.error(
                "alpaca_ws: could not fill the gap since %s (%s; %d prints recovered before "
                "it); the rest of that gap is missing: run `marketflow backfill` for that day",
                since.isoformat(),
                parsing.describe_error(exc),
                total,
            )
        self.owner.counters["gap_fill_failures"] += 1
