"""Alpha Vantage 1-minute bars (PROVIDER=alpha_vantage): TIME_SERIES_INTRADAY polling.

The free tier allows 25 requests a day and 5 a minute, so requests go round-robin over the
symbols, spaced to spend the daily budget evenly (ALPHA_VANTAGE_POLL_SECONDS overrides the
spacing; ALPHA_VANTAGE_DAILY_LIMIT / _MINUTE_LIMIT describe a premium key), and a rolling
budget guarantees the caps are never exceeded. Throttle answers (``Note``, ``Information``)
and ``Error Message`` are logged and backed off from, never fatal. Only bars newer than the
last one emitted (and whose minute has ended) become ``Bar`` events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from core.events import Bar
from streaming.providers.base import MissingCredential, Provider
from streaming.providers.router_backoff import Backoff
from streaming.venues.alpha_vantage.parsing import (
    Answer,
    RequestBudget,
    default_interval,
    new_closed_bars,
    parse_intraday,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.events import Event
    from core.settings import Settings
    from streaming.providers.base import TradeBatch

log = logging.getLogger(__name__)

COMPACT_MINUTES = 100  # outputsize=compact returns the latest 100 bars


class AlphaVantageProvider(Provider):
    name = "alpha_vantage"

    def __init__(self, settings: Settings, symbols: Sequence[str]) -> None:
        super().__init__(symbols)
        if settings.alpha_vantage_api_key is None:
            raise MissingCredential(self.name, "ALPHA_VANTAGE_API_KEY")
        self._key = settings.alpha_vantage_api_key
        self.url = settings.alpha_vantage_url
        self.budget = RequestBudget(
            settings.alpha_vantage_minute_limit, settings.alpha_vantage_daily_limit
        )
        self.interval = settings.alpha_vantage_poll_seconds or default_interval(
            settings.alpha_vantage_minute_limit, settings.alpha_vantage_daily_limit
        )
        self.throttle_s = settings.alpha_vantage_throttle_seconds
        cap = settings.provider_backoff_max_seconds
        self._backoff = Backoff(base=min(5.0, cap), cap=cap)
        self.last_bar: dict[str, datetime] = {}
        self._not_before: dict[str, float] = {}  # per-symbol cooldown (monotonic seconds)
        self.counters.update(requests=0, bars=0, throttled=0, errors=0, gaps=0)
        # httpx logs every URL at INFO, and the API key travels in the query string
        logging.getLogger("httpx").setLevel(logging.WARNING)
        revisit = self.interval * len(self.symbols) / 60.0
        if revisit > COMPACT_MINUTES:
            log.warning(
                "alpha_vantage: %d symbols at one request every %.0f s means each symbol "
                "is polled every %.0f min, but a compact answer covers only %d min: bars "
                "will be missed. Use fewer symbols or a premium key "
                "(ALPHA_VANTAGE_DAILY_LIMIT, ALPHA_VANTAGE_POLL_SECONDS).",
                len(self.symbols),
                self.interval,
                revisit,
                COMPACT_MINUTES,
            )

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        async with httpx.AsyncClient(timeout=30.0) as client:
            turn = 0
            while not self.stopping:
                symbol, wait = self._next_symbol(turn, time.monotonic())
                turn += 1
                wait = max(wait, self.budget.wait_seconds(time.monotonic()))
                if wait > 0 and await self.sleep(wait):
                    return
                self.budget.record(time.monotonic())
                for bar in await self._poll(client, symbol):
                    yield bar
                if await self.sleep(self.interval):
                    return

    def _next_symbol(self, turn: int, now: float) -> tuple[str, float]:
        """Round-robin, skipping symbols in cooldown; (symbol, seconds to wait for it)."""
        count = len(self.symbols)
        for k in range(count):
            symbol = self.symbols[(turn + k) % count]
            if self._not_before.get(symbol, 0.0) <= now:
                return symbol, 0.0
        symbol = min(self.symbols, key=lambda s: self._not_before.get(s, 0.0))
        return symbol, self._not_before[symbol] - now

    async def _poll(self, client: httpx.AsyncClient, symbol: str) -> list[Bar]:
        params = {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": symbol,
            "interval": "1min",
            "outputsize": "compact",
            "datatype": "json",
            "apikey": self._key.get_secret_value(),
        }
        self.counters["requests"] += 1
        try:
            response = await client.get(self.url, params=params)
            response.raise_for_status()
            payload: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            delay = self._backoff.next_delay()
            reason = (
                f"HTTP {exc.response.status_code}"
                if isinstance(exc, httpx.HTTPStatusError)
                else type(exc).__name__
            )
            if isinstance(exc, ValueError):
                self.rejects.add("malformed_response", response.text[:200])
            log.warning("alpha_vantage: %s for %s; retrying in %.0f s", reason, symbol, delay)
            self._not_before[symbol] = time.monotonic() + delay
            return []
        parsed = parse_intraday(payload, symbol)
        for reason, sample in parsed.rejects:
            self.rejects.add(reason, sample)
        if parsed.answer is Answer.THROTTLED:
            self.counters["throttled"] += 1
            until = time.monotonic() + self.throttle_s
            for s in self.symbols:  # the cap is per key, not per symbol
                self._not_before[s] = max(self._not_before.get(s, 0.0), until)
            log.warning(
                "alpha_vantage: throttled by the API (%s); pausing all symbols for %.0f s",
                parsed.message,
                self.throttle_s,
            )
            return []
        if parsed.answer is Answer.ERROR:
            self.counters["errors"] += 1
            self._not_before[symbol] = time.monotonic() + 4 * self.throttle_s
            log.error(
                "alpha_vantage: the API rejected the request for %s (%s); check the symbol "
                "and ALPHA_VANTAGE_API_KEY; retrying that symbol in %.0f s",
                symbol,
                parsed.message,
                4 * self.throttle_s,
            )
            return []
        if parsed.answer is Answer.MALFORMED:
            self.rejects.add("malformed_response", parsed.message)
            log.warning("alpha_vantage: unusable answer for %s: %s", symbol, parsed.message)
            return []
        self._backoff.reset()
        last = self.last_bar.get(symbol)
        if last is not None and parsed.bars and parsed.bars[0].ts > last + timedelta(minutes=1):
            self.counters["gaps"] += 1
            log.warning(
                "alpha_vantage: %s bars between %s and %s may be missing (no answer covered them)",
                symbol,
                last.isoformat(),
                parsed.bars[0].ts.isoformat(),
            )
        fresh = new_closed_bars(parsed.bars, last, datetime.now(UTC))
        if fresh:
            self.last_bar[symbol] = fresh[-1].ts
            self.counters["bars"] += len(fresh)
        return fresh


def build(settings: Settings, symbols: list[str]) -> AlphaVantageProvider:
    return AlphaVantageProvider(settings, symbols)
