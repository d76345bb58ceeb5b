"""Several providers at once (PROVIDER=router), each for its own symbols, merged into one
stream: ingestion shards by symbol lists (docs/scale-out.md).

Routing is per symbol from ``symbol_providers`` (``router_table``), falling back to the
default rules of ``router_table``. A provider whose credentials are missing is not started: its
symbols are skipped with an error naming the variables (never silently swapped for demo
data). Each provider runs in its own supervised worker: a crash restarts it with backoff
and jitter; a ``ProviderError`` (bad credentials, a plan that lacks the feed) stops only
that worker, loudly; the others keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from core.events import Event, Trade
from streaming.providers.base import Provider, ProviderError, TradeBatch, make_provider
from streaming.providers.router_backoff import Backoff
from streaming.providers.router_table import EXTERNAL, Plan, Route, load_table, plan, routes_for
from streaming.queue_wait import Woken, get_or_wake

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.settings import Settings

log = logging.getLogger(__name__)

Factory = Callable[[str, list[str], Plan], Provider]


class RouterProvider(Provider):
    name = "router"

    def __init__(
        self,
        settings: Settings,
        symbols: Sequence[str],
        *,
        table: Mapping[str, Route] | None = None,
        factory: Factory | None = None,
    ) -> None:
        super().__init__(symbols)
        self._settings = settings
        self._table = table
        self._factory = factory or self._build_child
        self._queue: asyncio.Queue[Event | TradeBatch] = asyncio.Queue(maxsize=20_000)
        self.children: dict[str, Provider] = {}
        self.worker_state: dict[str, str] = {}
        self.plan: Plan | None = None
        self._counters_at = 0.0
        self._all_stopped = asyncio.Event()

    # --- planning -------------------------------------------------------------------------

    async def _load_table(self) -> Mapping[str, Route]:
        if self._table is not None:
            return self._table
        from core.service_urls import redact_text

        # the URL the ingest command resolved (settings.database_url): never looked up here
        url = self._settings.database_url
        if url is None:
            log.warning("router: no database given; using default routes")
            return {}
        try:
            return await asyncio.to_thread(load_table, url)
        except Exception as exc:  # no database: the default rules still route
            log.warning(
                "router: symbol_providers not readable (%s: %s); using default routes",
                type(exc).__name__,
                redact_text(str(exc))[:200],  # libpq may echo the URL, password included
            )
            return {}

    def make_plan(self, table: Mapping[str, Route]) -> Plan:
        result = plan(routes_for(self.symbols, table), self._settings)
        for provider, syms in result.workers.items():
            log.info("router: %s ← %s", provider, ", ".join(syms))
        for provider, syms in result.external.items():
            log.info("router: %s routed to %s: %s", ", ".join(syms), provider, EXTERNAL[provider])
        for provider, (variables, syms) in result.missing.items():
            log.error(
                "router: %s needs %s; not started, so %s get no data (set the variables, "
                "or route these symbols elsewhere in symbol_providers)",
                provider,
                " and ".join(variables),
                ", ".join(syms),
            )
        self.zero_size_ok = any(p == "ig" for p in result.workers)
        return result

    def _build_child(self, name: str, symbols: list[str], routing: Plan) -> Provider:
        if name == "ig":
            from streaming.venues.ig.data import IgProvider

            return IgProvider(self._settings, symbols, epics=routing.epics)
        return make_provider(self._settings, symbols, name)

    # --- running --------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        self.plan = self.make_plan(await self._load_table())
        if not self.plan.workers:
            raise ProviderError(
                "router: no provider can run for "
                + ", ".join(self.symbols)
                + " (see the errors above for the missing variables)"
            )
        workers = [
            asyncio.create_task(self._supervise(name, syms), name=f"router-{name}")
            for name, syms in self.plan.workers.items()
        ]
        stopped = asyncio.create_task(self._stop.wait())
        dead = asyncio.create_task(self._all_stopped.wait())
        try:
            while True:
                if self._queue.empty() and dead.done():
                    raise ProviderError(
                        "router: every provider stopped: "
                        + "; ".join(f"{k} {v}" for k, v in self.worker_state.items())
                    )
                item = await get_or_wake(self._queue, stopped, dead)
                if isinstance(item, Woken):
                    if stopped.done():
                        return
                    continue
                self._refresh_counters()
                yield item
        finally:
            for task in (*workers, stopped, dead):
                task.cancel()
            for task in (*workers, stopped, dead):
                with contextlib.suppress(BaseException):
                    await task

    async def _supervise(self, name: str, symbols: list[str]) -> None:
        backoff = Backoff(base=1.0, cap=self._settings.provider_backoff_max_seconds)
        restarts = 0
        try:
            while not self.stopping:
                try:
                    child = self._factory(name, symbols, self.plan or Plan())
                except ProviderError as exc:
                    self._stopped(name, symbols, exc)
                    return
                child.rejects = self.rejects  # one set of counters for the pipeline
                self.children[name] = child
                self.worker_state[name] = "running"
                try:
                    async for event in child:
                        if isinstance(event, Trade):
                            if event.size == 0 and not child.zero_size_ok:
                                self.rejects.add("bad_size", event)  # only IG's quote ticks
                                continue
                            # the worker's provenance, which the router's own would hide
                            event.source = event.source or child.tick_source
                            event.feed = event.feed or child.feed
                        await self._queue.put(event)
                        backoff.reset()
                    if self.stopping:
                        return
                    log.warning("router: %s ended by itself; restarting it", name)
                except ProviderError as exc:
                    self._stopped(name, symbols, exc)
                    return
                except Exception as exc:
                    log.exception("router: %s failed (%s)", name, type(exc).__name__)
                finally:
                    await child.aclose()
                restarts += 1
                self.counters[f"{name}.restarts"] = restarts
                self.worker_state[name] = "restarting"
                delay = backoff.next_delay()
                log.warning(
                    "router: restarting %s in %.1f s (restart %d); other providers keep running",
                    name,
                    delay,
                    restarts,
                )
                if await self.sleep(delay):
                    return
        finally:
            assert self.plan is not None
            states = [self.worker_state.get(n) for n in self.plan.workers]
            if not self.stopping and all(state == "stopped" for state in states):
                self._all_stopped.set()

    def _stopped(self, name: str, symbols: list[str], exc: ProviderError) -> None:
        self.worker_state[name] = "stopped"
        self.counters[f"{name}.stopped"] = 1
        log.error(
            "router: %s stopped: %s; %s get no data until this is fixed, other providers continue",
            name,
            exc,
            ", ".join(symbols),
        )

    def _refresh_counters(self) -> None:
        now = time.monotonic()
        if now - self._counters_at < 1.0:
            return
        self._counters_at = now
        for name, child in self.children.items():
            for key, value in child.counters.items():
                self.counters[f"{name}.{key}"] = value

    def stop(self) -> None:
        super().stop()
        for child in self.children.values():
            child.stop()


def build(settings: Settings, symbols: list[str]) -> RouterProvider:
    return RouterProvider(settings, symbols)
