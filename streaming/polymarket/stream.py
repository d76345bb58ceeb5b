"""``marketflow polymarket stream``: books → monitor → PostgreSQL / Redis, supervised.

Wiring only: the market channel feeds frames into the ``BookStore``; the tokens a frame
changed are re-evaluated by the ``Monitor``; every conflation interval the changed rows
and episode events go to the ``Store``. Every ``refresh_seconds`` the active market set
is re-read from ``binary_markets`` (new markets subscribed, closed ones unsubscribed)
and resolved paper positions are settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from analytics.arbitrage import fee_rate_for
from core.contracts import Table
from storage.db import libpq_url
from streaming.polymarket.book import BookStore
from streaming.polymarket.monitor import MarketInfo, Monitor
from streaming.polymarket.store import Store
from streaming.venues.polymarket.data import MarketChannel

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    ws_url: str
    min_edge: float
    stale_seconds: float
    conflation_seconds: float = 1.0
    max_assets: int = 500
    ping_seconds: float = 10.0
    silence_seconds: float | None = None
    backoff_max: float = 30.0
    fee_rates: tuple[tuple[str, float], ...] = ()
    default_fee_rate: float = 0.0
    paper: bool = False
    paper_max_cost: float = 100.0
    refresh_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings, paper: bool = False) -> StreamConfig:
        s = settings
        return cls(
            ws_url=s.polymarket_ws_url,
            min_edge=s.polymarket_min_edge,
            stale_seconds=s.polymarket_stale_seconds,
            conflation_seconds=s.polymarket_conflation_seconds,
            max_assets=s.polymarket_max_assets_per_connection,
            ping_seconds=s.polymarket_ping_seconds,
            backoff_max=s.polymarket_backoff_max_seconds,
            fee_rates=tuple(s.polymarket_fee_rates.items()),
            default_fee_rate=s.polymarket_fee_rate,
            paper=paper,
            paper_max_cost=s.polymarket_paper_max_cost,
        )


def load_markets(database_url: str, config: StreamConfig) -> list[MarketInfo]:
    """Active binary markets with both tokens (stored fee rate, else the category's)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            f"select m.market_id, m.symbol_id, s.symbol, m.yes_token_id, m.no_token_id,"
            f" m.fee_rate, m.category, m.event_id, m.neg_risk, m.augmented,"
            # the event's outcomes that can still win, whatever their trading status
            f" (select count(*) from {Table.BINARY_MARKETS} e where e.event_id = m.event_id"
            f" and not (e.status = 'resolved' and e.resolution = 'no'))"
            f" from {Table.BINARY_MARKETS} m left join {Table.SYMBOLS} s on s.id = m.symbol_id"
            f" where m.status = 'active' and m.yes_token_id is not null"
            f" and m.no_token_id is not null order by m.id"
        ).fetchall()
    rates = dict(config.fee_rates)
    return [
        MarketInfo(
            market_id=r[0],
            symbol_id=r[1],
            symbol=r[2] or r[0],
            yes_token_id=r[3],
            no_token_id=r[4],
            fee_rate=r[5]
            if r[5] is not None
            else fee_rate_for(r[6], rates, config.default_fee_rate),
            event_id=r[7],
            neg_risk=bool(r[8]),
            augmented=bool(r[9]),
            event_outcomes=int(r[10]) if r[7] is not None and r[8] else None,
        )
        for r in rows
    ]


class PolymarketStream:
    """The running pieces, exposed for ``marketflow status`` counters and tests."""

    def __init__(
        self,
        config: StreamConfig,
        database_url: str,
        redis_url: str | None,
        markets: list[MarketInfo],
    ) -> None:
        self.config = config
        self.database_url = database_url
        self.books = BookStore(assets=[])
        self.monitor = Monitor(
            markets, self.books, config.min_edge, config.stale_seconds, config.paper_max_cost
        )
        self.store = Store(database_url, redis_url, paper=config.paper)
        self.channel = MarketChannel(
            config.ws_url,
            self._on_frame,
            self._on_reset,
            self._on_alive,
            max_assets=config.max_assets,
            ping_seconds=config.ping_seconds,
            silence_seconds=config.silence_seconds,
            backoff_max=config.backoff_max,
        )
        self.flushes = 0

    # --- callbacks from the channel (hot path) ----------------------------------------
    def _on_frame(self, frame: str | bytes, now: float) -> None:
        changed = self.books.apply_text(frame, now)
        if changed:
            self.monitor.on_changed(changed, now)

    def _on_reset(self, assets: list[str], now: float) -> None:
        self.books.reset(assets)
        self.monitor.on_changed(assets, now)

    def _on_alive(self, assets: list[str], now: float) -> None:
        self.books.touch(assets, now)

    def counters(self) -> dict[str, int | float]:
        return {
            "markets": len(self.monitor.by_id),
            "frames": self.channel.frames,
            "messages_applied": self.books.applied,
            "rejects": self.books.rejects.total,
            "connects": self.channel.connects,
            "reconnects": self.channel.reconnects,
            "recycled": self.channel.recycled,
            "rows_written": self.store.rows_written,
            "open_opportunities": len(self.monitor.open),
            "publish_failures": self.store.publish_failures,
            "db_failures": self.store.db_failures,
            "events_dropped": self.store.events_dropped,
            "paper_skipped": self.store.paper_skipped,
            "errors": self.channel.errors,
            "paper_positions_open": sum(len(p) for p in self.store.positions.values()),
        }

    # --- loops --------------------------------------------------------------------
    async def flush(self) -> None:
        if self.books.invalidated:  # tick size changed: the old ladder is void, re-snapshot
            assets, self.books.invalidated = list(self.books.invalidated), set()
            await self.channel.resnapshot(assets)
        self.monitor.sweep(time.monotonic())
        await self.store.flush(
            self.monitor.take_rows(),
            self.monitor.take_events(),
            self.monitor.by_id,
            datetime.now(UTC),
            self.books.rejects,
        )
        self.flushes += 1

    async def refresh(self) -> None:
        """Pick up markets discovery added, drop the ones that closed, settle positions."""
        markets = await asyncio.to_thread(load_markets, self.database_url, self.config)
        wanted = {m.market_id for m in markets}
        gone = [mid for mid in self.monitor.by_id if mid not in wanted]
        if gone:
            await self.channel.unsubscribe(self.monitor.remove_markets(gone, time.monotonic()))
        new_tokens = self.monitor.add_markets(markets)
        if new_tokens:
            await self.channel.subscribe(new_tokens)
        await self.store.settle()

    async def run(self, stop: asyncio.Event) -> None:
        await self.channel.start(list(self.monitor.by_token))
        last_refresh = time.monotonic()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.conflation_seconds)
                await self.flush()
                if time.monotonic() - last_refresh >= self.config.refresh_seconds:
                    last_refresh = time.monotonic()
                    try:
                        await self.refresh()
                    except (psycopg.Error, OSError) as exc:
                        log.warning(
                            "polymarket: market refresh failed (%s)", exc.__class__.__name__
                        )
        finally:
            await self.channel.stop()
            try:  # the last rows and episode events; a failure is reported, not hidden
                await self.flush()
            except Exception:
                log.exception("polymarket: final flush failed; its rows are not stored")
            await self.store.close()
