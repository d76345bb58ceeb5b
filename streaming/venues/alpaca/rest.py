"""Alpaca REST gap fill: after a reconnect, every print since the stream's last known time
from ``/v2/stocks/trades`` (stocks) or ``/v1beta3/crypto/us/trades`` (crypto pairs), through
alpaca-py's historical data clients.

Bounded memory: the gap fill walks the API one page (``limit``/``page_token``) at a time and
queues each page before asking for the next, so a long outage costs at most one page in hand
plus the provider's bounded queue, never the whole outage (its ``put`` is the backpressure).
Pages come in the API's order, symbol by symbol and in time within a symbol. A failed page is
retried with backoff from its own page token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from core.events import Trade
from streaming.providers.base import Provider
from streaming.providers.router_backoff import Backoff
from streaming.venues.alpaca import parsing

log = logging.getLogger(__name__)

BACKFILL_ATTEMPTS = 5  # per page: a failed page is retried from its own page token
GAP_FILL_PAGE_LIMIT = 1_000  # prints per REST page (the API allows up to 10 000)
STOCKS, CRYPTO = "stocks", "crypto"  # the two streams (and trades endpoints) of Alpaca


class GapFiller:
    """The REST side of one Alpaca stream: ``fill(since)`` hands every print of ``symbols``
    since ``since`` to ``put``, counting on the provider's counters and rejects and stopping
    with it. ``kind`` is ``stocks`` (``feed`` applies) or ``crypto``."""

    def __init__(
        self,
        owner: Provider,
        put: Callable[[Trade], Awaitable[None]],
        *,
        key: SecretStr,
        secret: SecretStr,
        data_url: str | None,
        feed: str,
        symbols: Sequence[str],
        kind: str = STOCKS,
        page_limit: int = GAP_FILL_PAGE_LIMIT,
    ) -> None:
        self.owner = owner
        self.symbols = list(symbols)
        self.kind = kind
        self._put = put
        self._key = key
        self._secret = secret
        self._data_url = data_url
        self.feed = feed
        self.page_limit = page_limit
        self._rest_client: Any = None

    def close(self) -> None:
        """Close the REST client's HTTP session, if one was opened."""
        if self._rest_client is not None:
            self._rest_client._session.close()

    async def fill(self, since: datetime) -> None:
        """Queue every print since ``since``, one REST page at a time."""
        page_token: str | None = None
        total = 0
        while True:
            payload = await self._fetch_page(since, page_token)
            if payload is None:  # stopping, or the page failed every attempt
                break
            trades = self._parse_rest(payload)  # on the loop: rejects are not thread-safe
            trades.sort(key=lambda t: (t.symbol, t.ts))  # the API's order, made certain
            for trade in trades:
                await self._put(trade)  # blocks while the consumer is behind
            total += len(trades)
            self.owner.counters["gap_fill_trades"] += len(trades)
            self.owner.counters["gap_fill_pages"] += 1
            next_token = payload.get("next_page_token")
            if next_token is not None and next_token == page_token:
                # a server repeating a page would keep the gap fill busy forever
                log.error("alpaca_ws: gap fill got page token %r twice; stopped", next_token)
                break
            page_token = next_token
            if not page_token:
                log.info(
                    "alpaca_ws: gap fill since %s: %d prints from the REST API (duplicates "
                    "of streamed prints are dropped)",
                    since.isoformat(),
                    total,
                )
                return
        if self.owner.stopping:
            return
        self.owner.counters["gap_fill_failures"] += 1
        log.error(
            "alpaca_ws: could not fill the gap since %s after %d attempts on one page (%d "
            "prints recovered before it); the rest of that gap is missing (re-run a "
            "backfill for it)",
            since.isoformat(),
            BACKFILL_ATTEMPTS,
            total,
        )

    async def _fetch_page(self, since: datetime, page_token: str | None) -> dict[str, Any] | None:
        """One raw page, retried with backoff; None when stopping or out of attempts."""
        backoff = Backoff(base=1.0, cap=30.0)
        for attempt in range(1, BACKFILL_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(self._fetch_rest, self.symbols, since, page_token)
            except Exception as exc:
                log.warning(
                    "alpaca_ws: gap fill since %s failed (attempt %d/%d): %s",
                    since.isoformat(),
                    attempt,
                    BACKFILL_ATTEMPTS,
                    parsing.describe_error(exc),
                )
                if await self.owner.sleep(backoff.next_delay()):
                    return None
        return None

    def _client(self) -> Any:
        from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient

        if self._rest_client is None:
            kind = CryptoHistoricalDataClient if self.kind == CRYPTO else StockHistoricalDataClient
            self._rest_client = kind(
                self._key.get_secret_value(),
                self._secret.get_secret_value(),
                raw_data=True,
                url_override=self._data_url,
            )
        return self._rest_client

    def _fetch_rest(
        self, symbols: Sequence[str], since: datetime, page_token: str | None
    ) -> dict[str, Any]:
        """One raw trades page (runs in a worker thread). alpaca-py's ``get_stock_trades`` /
        ``get_crypto_trades`` would follow every page into one dict; its ``get`` makes the
        single signed request (with its 429 retry), so pages are walked here instead."""
        from alpaca.data.requests import CryptoTradesRequest, StockTradesRequest

        request: StockTradesRequest | CryptoTradesRequest
        if self.kind == CRYPTO:
            request = CryptoTradesRequest(
                symbol_or_symbols=list(symbols), start=since, limit=self.page_limit
            )
            path = "/crypto/us/trades"  # under the client's v1beta3 base
        else:
            request = StockTradesRequest(
                symbol_or_symbols=list(symbols),
                start=since,
                feed=self.feed,  # type: ignore[arg-type]  # pydantic coerces it to DataFeed
                limit=self.page_limit,
            )
            path = "/stocks/trades"
        params = request.to_request_fields()
        if page_token:
            params["page_token"] = page_token
        answer = self._client().get(path, params)
        if not isinstance(answer, dict):
            raise ValueError(f"trades answer is a {type(answer).__name__}, not an object")
        return answer

    def _parse_rest(self, payload: dict[str, Any]) -> list[Trade]:
        trades: list[Trade] = []
        by_symbol = payload.get("trades") or {}
        if not isinstance(by_symbol, dict):
            self.owner.rejects.add("malformed_rest_page", str(by_symbol)[:200])
            return trades
        for symbol, item in parsing.rest_trades(by_symbol):
            try:
                trades.append(parsing.parse_trade(item, symbol=symbol))
            except (ValueError, AttributeError, TypeError, OverflowError):
                self.owner.rejects.add("malformed_rest_trade", item)
        return trades
