"""The Alpaca provider's WebSocket streams: one per kind of symbol (docs/providers.md).

Stocks go to the stock stream (``/v2/{feed}``, ``ALPACA_STREAM_URL``) and crypto pairs to
the crypto stream (``/v1beta3/crypto/us``, ``ALPACA_CRYPTO_STREAM_URL``). A pair is stored
and shown without its slash (``BTCUSD``) and spoken to Alpaca with it (``BTC/USD``,
``parsing.alpaca_symbol``). Both speak the same protocol (handshake, subscribe, frames);
they differ in where they connect, when silence means a dead socket (the stock stream only
while XNYS trades, the crypto stream always: pairs trade 24/7) and which REST endpoint fills
a gap. Each stream keeps its own session state: clock, backoff, first connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from analytics.sessions import in_session
from core.contracts import CRYPTO_FEED
from storage.symbols import stored_symbol
from streaming.providers.router_backoff import Backoff
from streaming.venues.alpaca import parsing
from streaming.venues.alpaca.gap_fill import GapFiller
from streaming.venues.alpaca.rest import AssetClass

STOCKS, CRYPTO = AssetClass.STOCKS.value, AssetClass.CRYPTO.value

if TYPE_CHECKING:
    from core.settings import Settings
    from streaming.providers.base import Provider


def xnys_open(now: datetime) -> bool:
    """Whether the NYSE is in its regular session (the stock stream's silence watchdog only
    runs then). Outside the calendar's range it watches rather than go blind."""
    try:
        return in_session("XNYS", now)
    except ValueError:
        return True


def always_open(_now: datetime) -> bool:
    """Crypto pairs trade around the clock: silence is always suspicious."""
    return True


@dataclass
class Feed:
    """One stream of the provider and its session state."""

    kind: str  # STOCKS or CRYPTO
    url: str
    symbols: list[str]  # stored names (BTCUSD)
    market_open: Callable[[datetime], bool]
    gaps: GapFiller
    backoff: Backoff
    tape: str  # ticks.feed of its prints: the equity feed, or crypto_us
    clock: datetime | None = None  # newest valid venue time seen on this stream
    first_connect_at: datetime | None = None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"alpaca_ws {self.kind}"

    @property
    def asset_class(self) -> AssetClass:
        return AssetClass(self.kind)

    @property
    def wire_symbols(self) -> list[str]:
        """The symbols as Alpaca writes them (subscriptions, REST requests)."""
        if self.kind == CRYPTO:
            return [parsing.alpaca_symbol(s) for s in self.symbols]
        return list(self.symbols)


def split_symbols(written: Sequence[str]) -> dict[str, list[str]]:
    """Stored names by the stream that serves them (kinds without symbols left out), from
    the symbols as the user wrote them (a slash marks a pair whatever its base)."""
    out: dict[str, list[str]] = {}
    for symbol in written:
        kind = CRYPTO if parsing.is_crypto_pair(symbol) else STOCKS
        name = stored_symbol(symbol)
        if name not in out.get(kind, []):
            out.setdefault(kind, []).append(name)
    return out


# Alpaca's pairs trade 24/7: their sessions are the UTC day (analytics/sessions.py)
CRYPTO_SYMBOL_INFO: dict[str, object] = {
    "asset_type": "crypto",
    "market": "24/7",
    "timezone": "UTC",
}


def build_feeds(
    owner: Provider,
    written: Sequence[str],
    settings: Settings,
    put: Callable[[Any], Awaitable[None]],
    market_open: Mapping[str, Callable[[datetime], bool]],
    page_limit: int,
) -> list[Feed]:
    """One ``Feed`` per kind among the ``written`` symbols (stocks first), each with its URL
    and gap filler; crypto pairs are declared 24/7 in ``owner.symbol_info``."""
    assert settings.alpaca_api_key is not None and settings.alpaca_secret_key is not None
    feed_name = settings.alpaca_feed.strip().lower()
    urls = {
        STOCKS: parsing.stream_url(feed_name, settings.alpaca_stream_url),
        CRYPTO: parsing.crypto_stream_url(settings.alpaca_crypto_stream_url),
    }
    feeds = []
    by_kind = split_symbols(written)
    for kind, symbols in sorted(by_kind.items(), key=lambda kv: kv[0] != STOCKS):
        gaps = GapFiller(
            owner,
            put,
            key=settings.alpaca_api_key,
            secret=settings.alpaca_secret_key,
            data_url=settings.alpaca_data_url,
            feed=feed_name,
            page_limit=page_limit,
        )
        backoff = Backoff(base=1.0, cap=settings.provider_backoff_max_seconds)
        tape = CRYPTO_FEED if kind == CRYPTO else feed_name
        feeds.append(Feed(kind, urls[kind], symbols, market_open[kind], gaps, backoff, tape))
        if kind == CRYPTO:
            for symbol in symbols:
                owner.symbol_info[symbol] = dict(CRYPTO_SYMBOL_INFO)
    return feeds


__all__ = ["CRYPTO", "STOCKS", "Feed", "always_open", "build_feeds", "split_symbols", "xnys_open"]
