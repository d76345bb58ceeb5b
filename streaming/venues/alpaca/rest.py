"""Alpaca's historical trades REST API: one client for stocks and crypto, used by the stream's
gap fill and by the history backfill (docs/providers.md, docs/history.md).

* ``/v2/stocks/trades`` (with ``feed`` always explicit: without it Alpaca answers from SIP
  while the free stream is IEX) and ``/v1beta3/crypto/us/trades``, both multi-symbol, under
  ``ALPACA_DATA_URL``. Pages of up to 10 000 trades, ``sort=asc``; ``next_page_token`` is
  followed until it is null: a short page is not the end.
* Rate limits: every answer's ``X-RateLimit-Limit/Remaining/Reset`` headers are kept; with
  nothing left the client waits for the reset before asking, and a 429 waits until the
  reset (``Retry-After``, else backoff) and asks again. 5xx answers, lost connections and a
  page that is not JSON are retried with exponential backoff and jitter from the same page
  token; after ``attempts`` in a row the page gives up (``RestUnavailable``). Other 4xx
  answers cannot get better by retrying: ``RestError`` names the setting to check.

Spoken with httpx rather than alpaca-py: alpaca-py hides the rate-limit headers, retries a
429 after a fixed 3 s whatever the reset says, and parses every trade into a pydantic
model; the history needs the headers, exact control of the page chain and raw pages it can
read a column at a time (``trade_pages``). One client per thread; ``sleep`` is how it
waits, and returns True when its owner asked it to stop (``Stopped``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlparse

import httpx
import orjson
from pydantic import SecretStr

from core.events import Rejects
from streaming.providers.base import ProviderError
from streaming.providers.router_backoff import Backoff
from streaming.venues.alpaca.trade_pages import NotAPage, PageReader, TradesPage

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_DATA_URL = "https://data.alpaca.markets"
MAX_PAGE_LIMIT = 10_000  # the API's largest page
ATTEMPTS = 6  # per page, for 5xx, lost connections and pages that are not JSON
MAX_RATE_LIMITED = 30  # 429s in a row before a page gives up
RESET_MARGIN_S = 0.25  # the server's clock and ours are not the same clock
MAX_RESET_WAIT_S = 65.0  # the window is a minute: a reset further away is a wrong clock
MALFORMED_PAGE = "malformed_page"


class AssetClass(StrEnum):
    STOCKS = "stocks"
    CRYPTO = "crypto"


PATHS = {AssetClass.STOCKS: "/v2/stocks/trades", AssetClass.CRYPTO: "/v1beta3/crypto/us/trades"}


def rfc3339(moment: datetime) -> str:
    """UTC with microseconds and a ``Z``, as Alpaca documents its ``start``/``end``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class TradesQuery:
    """Trades of ``symbols`` (Alpaca's names) from ``start`` to ``end`` (exclusive)."""

    asset_class: AssetClass
    symbols: tuple[str, ...]
    start: datetime
    end: datetime | None = None
    feed: str | None = None  # stocks: iex, sip, ... (crypto has none)
    limit: int = MAX_PAGE_LIMIT

    def params(self, page_token: str | None) -> dict[str, str]:
        params = {
            "symbols": ",".join(self.symbols),
            "start": rfc3339(self.start),
            "limit": str(self.limit),
            "sort": "asc",
        }
        if self.end is not None:
            params["end"] = rfc3339(self.end)
        if self.asset_class is AssetClass.STOCKS and self.feed:
            params["feed"] = self.feed
        if page_token:
            params["page_token"] = page_token
        return params


@dataclass
class RestCounters:
    requests: int = 0
    pages: int = 0
    retries: int = 0  # requests repeated after a 5xx, a lost connection or a bad page
    server_errors: int = 0
    malformed_pages: int = 0
    rate_limited: int = 0  # 429 answers
    rate_limit_waits: int = 0  # waits for a reset (after a 429 or with nothing left)
    rate_limit_wait_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class RestError(ProviderError):
    """Alpaca refused the request for a reason retrying cannot fix; says what to change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RestUnavailable(RuntimeError):
    """A page failed every attempt; what was stored before it stays, a re-run resumes."""


class Stopped(Exception):
    """The owner asked the client to stop while it waited."""


@dataclass
class RateLimit:
    """The latest ``X-RateLimit-*`` headers: the window's size, what is left, when it resets
    (Unix seconds)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    def update(self, headers: httpx.Headers) -> None:
        for name, attr, kind in (
            ("x-ratelimit-limit", "limit", int),
            ("x-ratelimit-remaining", "remaining", int),
            ("x-ratelimit-reset", "reset_at", float),
        ):
            value = headers.get(name)
            if value is not None:
                try:
                    setattr(self, attr, kind(value))
                except ValueError:
                    continue

    def until_reset(self, now: float) -> float | None:
        """Seconds to the reset (with a margin, capped), None when unknown or past."""
        if self.reset_at is None or self.reset_at <= now:
            return None
        return min(self.reset_at - now + RESET_MARGIN_S, MAX_RESET_WAIT_S)


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def _message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:200]
    return str(body)[:200]


@dataclass
class AlpacaRestClient:
    key: SecretStr
    secret: SecretStr
    data_url: str | None = None
    attempts: int = ATTEMPTS
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    timeout_s: float = 30.0
    sleep: Callable[[float], bool] = _sleep
    clock: Callable[[], float] = time.time
    rejects: Rejects | None = None  # where a page that is not JSON is counted, if anywhere
    counters: RestCounters = field(default_factory=RestCounters)
    rate: RateLimit = field(default_factory=RateLimit)

    def __post_init__(self) -> None:
        base = (self.data_url or DEFAULT_DATA_URL).rstrip("/")
        host = urlparse(base).hostname or ""
        self._http = httpx.Client(
            base_url=base,
            headers={
                "APCA-API-KEY-ID": self.key.get_secret_value(),
                "APCA-API-SECRET-KEY": self.secret.get_secret_value(),
                "Accept": "application/json",
            },
            timeout=self.timeout_s,
            # a local server (tests, a proxy on this machine) never goes through a proxy
            trust_env=host not in ("127.0.0.1", "localhost", "::1"),
        )
        self._warned: set[str] = set()

    def close(self) -> None:
        self._http.close()

    def pages(
        self, query: TradesQuery, read: PageReader, page_token: str | None = None
    ) -> Iterator[TradesPage]:
        """Every page of ``query`` from ``page_token`` on, read by ``read``, in order."""
        while True:
            page = self.page(query, page_token, read)
            yield page
            token = page.next_page_token
            if token is None:
                return
            if token == page_token:
                # a server repeating a page would keep the client busy forever
                raise RestUnavailable(f"Alpaca sent page token {token!r} twice")
            page_token = token

    def page(self, query: TradesQuery, page_token: str | None, read: PageReader) -> TradesPage:
        """One page read by ``read`` (``trade_pages.read_page`` with the caller's names and
        counters), after whatever waits and retries it takes."""
        params = query.params(page_token)
        path = PATHS[query.asset_class]
        failures = Backoff(base=self.backoff_base, cap=self.backoff_cap)
        limited = Backoff(base=self.backoff_base, cap=MAX_RESET_WAIT_S)
        while True:
            if self.rate.remaining is not None and self.rate.remaining <= 0:
                wait = self.rate.until_reset(self.clock())
                if wait is not None:
                    self.rate.remaining = None  # the next answer says how many are left
                    self._wait_for_reset(wait)
            outcome = self._one_request(path, params, read)
            if isinstance(outcome, TradesPage):
                self.counters.pages += 1
                return outcome
            if isinstance(outcome, httpx.Response):  # 429
                self.counters.rate_limited += 1
                if limited.attempt >= MAX_RATE_LIMITED:
                    raise RestUnavailable(f"{path}: rate limited {limited.attempt} times in a row")
                self._wait_for_reset(self._rate_limited_wait(outcome, limited))
                continue
            if failures.attempt + 1 >= self.attempts:
                raise RestUnavailable(
                    f"{path} failed {failures.attempt + 1} times in a row ({outcome}); what "
                    "was stored before stays and a re-run resumes from there"
                )
            self.counters.retries += 1
            self._pause(failures.next_delay())

    def _one_request(
        self, path: str, params: dict[str, str], read: PageReader
    ) -> TradesPage | httpx.Response | str:
        """The page; the response of a 429; or why this attempt failed."""
        self.counters.requests += 1
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            self._warn_once("transport", "Alpaca REST unreachable (%s); retrying", exc)
            return type(exc).__name__
        self.rate.update(response.headers)
        status = response.status_code
        if status == 429:
            return response
        if status >= 500:
            self.counters.server_errors += 1
            self._warn_once("5xx", "Alpaca REST answered %s; retrying with backoff", status)
            return f"HTTP {status}"
        if status >= 400:
            raise RestError(self._refusal(status, _message(response)), status)
        try:
            return read(response.content)
        except NotAPage as exc:
            self.counters.malformed_pages += 1
            if self.rejects is not None:
                self.rejects.add(MALFORMED_PAGE, response.content[:200])
            self._warn_once("malformed", "Alpaca REST sent a page that is %s; retrying", exc)
            return "a page that is not JSON"

    def _rate_limited_wait(self, response: httpx.Response, limited: Backoff) -> float:
        """How long a 429 waits: until the reset, else Retry-After, else a backoff that
        grows with the 429s in a row (``limited`` counts them)."""
        backoff = limited.next_delay()
        wait = self.rate.until_reset(self.clock())
        if wait is None:
            retry_after = response.headers.get("retry-after")
            try:
                wait = min(float(retry_after), MAX_RESET_WAIT_S) if retry_after else None
            except ValueError:
                wait = None
        wait = backoff if wait is None else wait
        self._warn_once(
            "429", "Alpaca REST rate limit reached (429); waiting %.1f s for the reset", wait
        )
        return wait

    def _wait_for_reset(self, seconds: float) -> None:
        self.counters.rate_limit_waits += 1
        self.counters.rate_limit_wait_s += seconds
        self._pause(seconds)

    def _pause(self, seconds: float) -> None:
        if self.sleep(seconds):
            raise Stopped()

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        log.log(level, message, *args)

    @staticmethod
    def _refusal(status: int, message: str) -> str:
        if status in (401, 403):
            return (
                f"Alpaca refused the request ({status}: {message}): check ALPACA_API_KEY and "
                "ALPACA_SECRET_KEY, and ALPACA_FEED (the free plan has no recent SIP data: "
                "use iex)"
            )
        if status == 404:
            return f"Alpaca answered 404 ({message}): check ALPACA_DATA_URL"
        return f"Alpaca rejected the request ({status}: {message}): check the symbols and dates"


def chunks(items: Sequence[T], size: int) -> Iterator[tuple[T, ...]]:
    """Symbols in groups a request's URL can carry."""
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])
