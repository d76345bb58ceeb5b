"""IG Markets Level 1 (PROVIDER=ig): REST snapshot polling → quotes and quote ticks.

Log in with ``POST /session`` (v2), poll ``GET /markets/{epic}`` (v3) for each symbol every
IG_POLL_SECONDS, log in again on a 401, and after IG_MAX_FAILURES consecutive failures pause
for at least IG_COOLDOWN_SECONDS (doubling while failures go on, jittered; logged, and
visible as ``cooldowns``/``state`` in the counters). Wrong credentials stop the provider
with an error instead of retrying (IG locks accounts after repeated bad logins).
Symbol → epic comes from ``symbol_providers.epic``, else IG's market search. The events
are quotes, not prints: see ``ig.snapshot``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from streaming.providers.base import MissingCredential, Provider
from streaming.providers.router_backoff import Backoff
from streaming.venues.ig.parsing import (
    base_url,
    choose_epic,
    parse_market,
    quote_events,
    search_term,
)
from streaming.venues.ig.rest import IgError, IgSession

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from core.events import Event
    from core.settings import Settings
    from streaming.providers.base import TradeBatch

log = logging.getLogger(__name__)

STATES = {"starting": 0, "running": 1, "cooldown": 2}


class IgProvider(Provider):
    name = "ig"

    def __init__(
        self,
        settings: Settings,
        symbols: Sequence[str],
        *,
        epics: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(symbols)
        self.feed = "ig"  # ticks.feed: IG's Level 1 quote ticks (docs/history.md)
        missing = [
            env
            for value, env in (
                (settings.ig_api_key, "IG_API_KEY"),
                (settings.ig_username, "IG_USERNAME"),
                (settings.ig_password, "IG_PASSWORD"),
            )
            if not value
        ]
        if missing:
            raise MissingCredential(self.name, *missing)
        assert settings.ig_api_key and settings.ig_username and settings.ig_password
        self._settings = settings
        self._api_key, self._username = settings.ig_api_key, settings.ig_username
        self._password = settings.ig_password
        self.url = base_url(settings.ig_url, settings.ig_demo)
        # one snapshot request per symbol per cycle: many symbols stretch the cycle to stay
        # inside IG's request allowance instead of being throttled by it
        per_min = max(1, settings.ig_requests_per_minute)
        self.poll_s = max(settings.ig_poll_seconds, len(self.symbols) * 60.0 / per_min)
        if self.poll_s > settings.ig_poll_seconds:
            log.warning(
                "ig: %d symbols at %d requests/min (IG_REQUESTS_PER_MINUTE): each is polled "
                "every %.0f s, not IG_POLL_SECONDS=%g",
                len(self.symbols),
                per_min,
                self.poll_s,
                settings.ig_poll_seconds,
            )
        self.max_failures = max(1, settings.ig_max_failures)
        self.cooldown_s = settings.ig_cooldown_seconds
        # pauses after repeated failures: [1×, 2×] the setting, doubling to 8×, jittered so
        # workers that lost IG together do not retry in lock step; reset by a good poll
        self._cooldown = Backoff(base=2 * self.cooldown_s, cap=8 * self.cooldown_s)
        # httpcore's DEBUG trace (``marketflow -v``) logs response headers, and IG's carry
        # the session tokens (CST, X-SECURITY-TOKEN): never below INFO
        logging.getLogger("httpcore").setLevel(
            max(logging.INFO, logging.getLogger("httpcore").level)
        )
        self.zero_size_ok = True  # quote ticks carry size 0 by design
        self.epics: dict[str, str] = {k.upper(): v for k, v in (epics or {}).items()}
        self._table_loaded = epics is not None
        self._searched: set[str] = set()
        self._last: dict[str, tuple[str, float | None, float | None]] = {}
        self._skip_until: dict[str, float] = {}
        self.state = "starting"
        self.counters.update(
            polls=0, quotes=0, failures=0, cooldowns=0, logins=0, state=STATES["starting"]
        )

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.info("ig: %s → %s", self.state, state)
        self.state = state
        self.counters["state"] = STATES[state]

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        if not self._table_loaded:
            self.epics = {**await asyncio.to_thread(_table_epics, self._settings), **self.epics}
            self._table_loaded = True
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=15.0) as client:
            session = IgSession(client, self.url, self._api_key, self._username, self._password)
            failures = 0
            while not self.stopping:
                for symbol in self.symbols:
                    if self.stopping:
                        return
                    if self._skip_until.get(symbol, 0.0) > loop.time():
                        continue
                    try:
                        events = await self._poll(session, symbol)
                    except IgError as exc:
                        failures += 1
                        self.counters["failures"] += 1
                        log.warning(
                            "ig: %s (%d/%d consecutive failures)", exc, failures, self.max_failures
                        )
                        if failures >= self.max_failures:
                            break
                        continue
                    failures = 0
                    self._cooldown.reset()
                    self.counters["logins"] = session.logins
                    self._set_state("running")
                    for event in events:
                        yield event
                if failures >= self.max_failures:
                    failures = 0
                    self.counters["cooldowns"] += 1
                    self._set_state("cooldown")
                    pause = self._cooldown.next_delay()
                    log.error(
                        "ig: %d consecutive failures at %s; pausing %.0f s before trying "
                        "again (check IG status, IG_URL / IG_DEMO)",
                        self.max_failures,
                        self.url,
                        pause,
                    )
                    if await self.sleep(pause):
                        return
                    continue
                if await self.sleep(self.poll_s):
                    return

    async def _poll(self, session: IgSession, symbol: str) -> list:
        epic = await self._epic(session, symbol)
        if epic is None:
            return []
        self.counters["polls"] += 1
        try:
            payload = await session.get(f"/markets/{epic}", version=3)
        except LookupError as exc:
            log.error(
                "ig: epic %s for %s is unknown to IG (%s); set symbol_providers.epic",
                epic,
                symbol,
                exc,
            )
            if symbol in self._searched:
                self.epics.pop(symbol, None)  # a searched epic may be re-searched later
            self._skip(symbol)
            return []
        try:
            snap = parse_market(payload, epic)
        except ValueError as exc:
            self.rejects.add("malformed_snapshot", payload)
            log.warning("ig: unusable snapshot for %s: %s", symbol, exc)
            return []
        key = (snap.update_time, snap.bid, snap.offer)
        if self._last.get(symbol) == key:
            return []  # unchanged since the last poll: not a new quote
        self._last[symbol] = key
        events = quote_events(symbol, snap, datetime.now(UTC))
        if events is None:
            self.counters["not_tradeable"] = self.counters.get("not_tradeable", 0) + 1
            return []
        self.counters["quotes"] += 1
        return list(events)

    async def _epic(self, session: IgSession, symbol: str) -> str | None:
        epic = self.epics.get(symbol)
        if epic:
            return epic
        term = search_term(symbol)
        try:
            answer = await session.get("/markets", version=1, params={"searchTerm": term})
        except LookupError:
            answer = {}
        markets = answer.get("markets", []) if isinstance(answer, dict) else []
        epic = choose_epic(symbol, markets if isinstance(markets, list) else [])
        if epic is None:
            log.error(
                "ig: no IG market found for %s (searched %r); set its epic in symbol_providers",
                symbol,
                term,
            )
            self._skip(symbol)
            return None
        log.info("ig: %s → %s (from IG search)", symbol, epic)
        self.epics[symbol] = epic
        self._searched.add(symbol)
        return epic

    def _skip(self, symbol: str) -> None:
        self._skip_until[symbol] = asyncio.get_running_loop().time() + self.cooldown_s


def _table_epics(settings: Settings) -> dict[str, str]:
    """Epics from ``symbol_providers`` when given a database; {} (search) if not.

    The database URL is the one the ingest command resolved and handed over in
    ``settings.database_url``: a provider never looks servers up itself."""
    from streaming.providers.router_table import load_table

    if settings.database_url is None:
        log.warning("ig: no database given; epics come from IG search")
        return {}
    try:
        table = load_table(settings.database_url)
    except Exception as exc:  # database not reachable: search still works
        log.warning(
            "ig: symbol_providers not readable (%s); epics come from IG search", type(exc).__name__
        )
        return {}
    return {sym: route.epic for sym, route in table.items() if route.epic}


def build(settings: Settings, symbols: list[str]) -> IgProvider:
    return IgProvider(settings, symbols)
