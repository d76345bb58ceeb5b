"""The provider interface: an async source of normalised market events (docs/providers.md).

A provider is built by ``make_provider(settings, symbols)`` from the module ``PROVIDERS``
names for it (a venue's ``streaming/venues/<venue>/data.py``, or demo, replay and the router
here), which exposes ``build(settings, symbols) -> Provider`` (imported lazily, so a
provider's client library is only loaded when it is used).

Contract for implementers:

* ``async for event in provider`` yields ``Trade``, ``Quote``, ``Bar`` (``core.events``)
  or, for bulk sources, ``TradeBatch`` (columnar trades; the demo benchmark mode and replay
  use it so the pipeline can validate and write hundreds of thousands of rows per second).
* Timestamps are timezone-aware UTC ``datetime`` (``TradeBatch``: int64 ns since the epoch).
* Input the provider cannot parse is counted in ``self.rejects.add(reason, sample)`` and
  skipped — never raised out of the iterator. The pipeline persists these counters.
* ``stop()`` asks the source to finish: the iterator ends soon after (within about a second
  for polling providers that use ``await self.sleep(...)``). It never blocks.
* The iterator may end on its own (replay reaching the end of its file). A provider that
  cannot continue (bad credentials, a 402/409 from Alpaca) raises ``ProviderError`` with a
  message saying what to do next; one that loses its connection reconnects by itself.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.contracts import TickSource
from core.events import Bar, Event, Quote, Rejects, Trade
from storage.symbols import stored_symbol

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "PROVIDERS",
    "Bar",
    "Event",
    "MissingCredential",
    "Provider",
    "ProviderError",
    "Quote",
    "Rejects",
    "Trade",
    "TradeBatch",
    "make_provider",
]

# PROVIDER value → the module that builds it: a venue's data client under streaming/venues/,
# or a source of our own under streaming/providers/ (docs/providers.md)
PROVIDERS: dict[str, str] = {
    "demo": "streaming.providers.demo",
    "alpaca_ws": "streaming.venues.alpaca.data",
    "alpha_vantage": "streaming.venues.alpha_vantage.data",
    "ig": "streaming.venues.ig.data",
    "router": "streaming.providers.router",
    "replay": "streaming.providers.replay",
}


class ProviderError(RuntimeError):
    """A provider cannot run; the message says what to do next (never contains a secret)."""


class MissingCredential(ProviderError):
    """A credential the provider needs is not set; names the environment variable(s)."""

    def __init__(self, provider: str, *variables: str) -> None:
        self.provider = provider
        self.variables = variables
        names = " and ".join(variables)
        super().__init__(f"provider {provider!r} needs {names}: set it in the environment or .env")


@dataclass(slots=True)
class TradeBatch:
    """Trades of one symbol as columns: the bulk path (demo bench mode, replay).

    ``ts_ns`` int64 ns since the epoch (UTC); ``side`` int8 (+1, -1, 0 = unknown);
    ``bid``/``ask`` float64 with NaN where unknown; ``trade_id`` None → the pipeline derives
    deterministic ids from the print's content (so a retried or replayed batch is idempotent).
    """

    symbol: str
    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray | None = None
    bid: np.ndarray | None = None
    ask: np.ndarray | None = None
    trade_id: np.ndarray | None = None  # object array of str
    exchange: str | None = None

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])


class Provider(abc.ABC):
    """Base class: ``name``, ``symbols``, ``rejects``, ``stop()`` and async iteration."""

    #: the PROVIDER value (also ``symbols.provider`` for symbols it creates)
    name: str = "provider"

    def __init__(self, symbols: Sequence[str], *, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        # stored names: upper case, a pair without its slash (BTC/USD is BTCUSD)
        self.symbols: list[str] = [stored_symbol(s) for s in symbols]
        self.rejects = Rejects(self.name)
        self._stop = asyncio.Event()
        # symbol → metadata for symbols the provider knows that storage may not
        # (e.g. replay of a crypto file): {"market": "24/7", "timezone": "UTC", ...}
        self.symbol_info: dict[str, dict[str, object]] = {}
        # live sources get the pipeline's "timestamp within N s of now" check; recorded
        # history (replay) sets this False and gets only a sanity window (not in the future,
        # not before 1990)
        self.live: bool = True
        # quote-only sources (IG Level 1 snapshots) emit trades with size 0 that carry
        # bid/ask; everyone else's size-0 prints are rejected as bad input
        self.zero_size_ok: bool = False
        # provider-specific counters (reconnects, gap-fill prints, polls) the ingest
        # heartbeat publishes beside its own
        self.counters: dict[str, float] = {}
        # provenance of the prints (ticks.source, ticks.feed; docs/history.md) unless a
        # print carries its own (the Alpaca gap fill): how they arrive and from which tape
        self.tick_source: str = TickSource.STREAM
        self.feed: str | None = None

    async def prepare(self) -> None:
        """Before ingest declares ``symbols``: fill ``symbol_info`` from the venue where it
        knows better than the defaults (a crypto pair's increments and profile bin). The
        default does nothing; a failure inside must be logged and leave the defaults."""
        return None

    @abc.abstractmethod
    def stream(self) -> AsyncIterator[Event | TradeBatch]:
        """The events, until ``stop()`` is called or the source ends (an async generator)."""

    def __aiter__(self) -> AsyncIterator[Event | TradeBatch]:
        return self.stream()

    def stop(self) -> None:
        """Ask the source to finish; safe to call more than once, from the event loop."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until ``stop()``; True when stopping."""
        if self._stop.is_set():
            return True
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Release connections; the default only stops. Providers override as needed."""
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} symbols={self.symbols}>"


def make_provider(settings: Settings, symbols: Iterable[str], name: str | None = None) -> Provider:
    """The provider named by ``name`` (default ``settings.provider``) for ``symbols``."""
    key = (name or settings.provider or "demo").strip().lower()
    module_name = PROVIDERS.get(key)
    if module_name is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(f"unknown PROVIDER {key!r}: choose one of {known}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ProviderError(f"provider {key!r} is not available in this build") from exc
        raise
    provider = module.build(settings, list(symbols))
    if not isinstance(provider, Provider):
        raise ProviderError(f"streaming.providers.{module_name}.build did not return a Provider")
    return provider
