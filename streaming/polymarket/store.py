"""Where the monitor's output goes: PostgreSQL (batched) and Redis (best effort).

One long-lived async connection; each flush writes every changed ``binary_prices`` row in
one ``executemany`` and the episode events in the same transaction. Redis publishing never
blocks storage: when Redis is down the publish is skipped (counted) and retried later.
Paper mode books one equal-share pair per opened pair episode (unless its market already
holds an open paper pair), marks open positions at the
bids (``yes_bid + no_bid``) and settles them at resolution (1 per winning share).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from analytics.arbitrage import mark_value, settlement_value
from core.contracts import Channel, Table
from core.events import Rejects
from storage.db import DEFAULT_CONNECT_TIMEOUT_S, libpq_url
from streaming.ingest.rejects import RejectLedger
from streaming.polymarket.monitor import Episode, EpisodeEvent, MarketInfo, PriceRow

log = logging.getLogger(__name__)

BINARY_OPPORTUNITIES = Table.BINARY_OPPORTUNITIES

_INSERT_PRICE = f"""
insert into {Table.BINARY_PRICES} (ts, market_id, symbol_id, yes_bid, yes_ask, yes_mid,
    no_bid, no_ask, no_mid, spread, edge, executable_size, yes_last, no_last, arbitrage, stale)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (market_id, ts) do nothing
"""

_ADD_REJECTS = f"""
insert into {Table.INGEST_REJECTS} (day, source, reason, count, sample, last_seen)
values (%s, %s, %s, %s, %s, %s)
on conflict (day, source, reason) do update
   set count = {Table.INGEST_REJECTS}.count + excluded.count, sample = excluded.sample,
       last_seen = excluded.last_seen
"""


@dataclass
class OpenPosition:
    id: int
    market_id: str
    yes_qty: float
    no_qty: float
    cost: float  # entry cost + fees
    fee_rate: float


@dataclass
class Store:
    database_url: str
    redis_url: str | None
    paper: bool = False
    redis_retry_seconds: float = 5.0
    # episode events kept for the retry while the database is away (oldest dropped past it)
    max_pending_events: int = 10_000
    events_dropped: int = 0
    paper_skipped: int = 0  # episodes not booked: their market already has an open pair
    rows_written: int = 0
    published: int = 0
    publish_failures: int = 0
    db_failures: int = 0
    positions: dict[str, list[OpenPosition]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._conn: psycopg.AsyncConnection | None = None
        self._db_lock = asyncio.Lock()
        self._redis: aioredis.Redis | None = None
        self._redis_down_until = 0.0
        self._pending_events: list[EpisodeEvent] = []
        self._new_ids: list[OpenPosition | Episode] = []
        self._ledger = RejectLedger()
        self._retry_rows: dict[str, PriceRow] = {}

    # --- connections ----------------------------------------------------------------
    async def _db(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                libpq_url(self.database_url),
                application_name="marketflow-polymarket",
                # an unreachable host must not hold the flush loop (and a stop) for minutes
                connect_timeout=DEFAULT_CONNECT_TIMEOUT_S,
            )
            await self._load_positions()
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def _load_positions(self) -> None:
        assert self._conn is not None
        self.positions.clear()
        cur = await self._conn.execute(
            f"select p.id, p.market_id, p.yes_qty, p.no_qty,"
            f" coalesce(p.entry_cost, 0) + coalesce(p.fees_paid, 0), coalesce(m.fee_rate, 0)"
            f" from {Table.BINARY_POSITIONS} p left join {Table.BINARY_MARKETS} m"
            f" on m.market_id = p.market_id where p.status = 'open' and p.paper"
        )
        for row in await cur.fetchall():
            self._remember(OpenPosition(*row))
        await self._conn.commit()

    def _remember(self, pos: OpenPosition) -> None:
        self.positions.setdefault(pos.market_id, []).append(pos)

    # --- flush --------------------------------------------------------------------
    async def flush(
        self,
        rows: list[PriceRow],
        events: list[EpisodeEvent],
        markets: dict[str, MarketInfo],
        ts: datetime,
        rejects: Rejects | None = None,
    ) -> None:
        """Store one interval's rows, episode events and new reject counts; publish."""
        new_rejects = self._ledger.deltas([rejects]) if rejects is not None else []
        for source, reason, n, sample in new_rejects:
            log.warning("%s: skipped %d bad input(s) (%s), e.g. %s", source, n, reason, sample)
        if self._retry_rows:  # rows of a failed flush not superseded since
            newer = {r.market_id for r in rows}
            rows = [r for mid, r in self._retry_rows.items() if mid not in newer] + rows
            self._retry_rows = {}
        events = self._pending_events + events
        self._pending_events = []
        self._new_ids = []  # episodes / positions inserted by this (uncommitted) flush
        async with self._db_lock:  # one connection: flush and settle take turns
            try:
                conn = await self._db()
                async with conn.transaction():
                    if rows:
                        async with conn.cursor() as cur:
                            params = [_price_params(r, ts) for r in rows]
                            await cur.executemany(_INSERT_PRICE, params)
                    for event in events:
                        await self._store_event(conn, event)
                    if self.paper and rows:
                        await self._mark(conn, rows)
                    if new_rejects:
                        async with conn.cursor() as cur:
                            await cur.executemany(
                                _ADD_REJECTS,
                                [
                                    (ts.date(), src, reason, n, sample, ts)
                                    for src, reason, n, sample in new_rejects
                                ],
                            )
                self._ledger.mark(new_rejects)
                self.rows_written += len(rows)
            except (psycopg.Error, OSError) as exc:
                # the transaction rolled back: forget the ids it handed out and retry every
                # event and the latest row per market at the next flush (bounded: one row per
                # market, events only on episode changes)
                self.db_failures += 1
                self._retry_rows = {r.market_id: r for r in rows}
                for item in self._new_ids:
                    if isinstance(item, OpenPosition):
                        self.positions[item.market_id].remove(item)
                    else:
                        item.db_id = None
                self._pending_events = self._backlog(events)
                log.warning(
                    "polymarket store: database write failed (%s); retrying next flush",
                    exc.__class__.__name__,
                )
                if self._conn is not None and self._conn.broken:
                    self._conn = None
        await self._publish(rows, events, markets, ts)

    def _backlog(self, events: list[EpisodeEvent]) -> list[EpisodeEvent]:
        """The events to retry, bounded: an open whose close is also pending is folded into
        the close (storing a close stores its open first), then the oldest past
        ``max_pending_events`` are dropped and counted."""
        closing = {id(e.episode) for e in events if e.action == "close"}
        kept = [e for e in events if e.action == "close" or id(e.episode) not in closing]
        excess = len(kept) - self.max_pending_events
        if excess > 0:
            self.events_dropped += excess
            log.warning(
                "polymarket store: %d opportunity events dropped (database away, backlog "
                "bounded at %d)",
                excess,
                self.max_pending_events,
            )
            kept = kept[excess:]
        return kept

    async def _store_event(self, conn: psycopg.AsyncConnection, event: EpisodeEvent) -> None:
        ep = event.episode
        if event.action == "open" and ep.db_id is None:
            cur = await conn.execute(
                f"insert into {BINARY_OPPORTUNITIES} (market_id, event_id, kind, opened_at,"
                " best_edge, size, details) values (%s, %s, %s, %s, %s, %s, %s) returning id",
                (
                    ep.key if ep.kind == "pair" else None,
                    ep.key if ep.kind == "neg_risk" else None,
                    ep.kind,
                    ep.opened_at,
                    ep.best_edge,
                    ep.size,
                    Jsonb(ep.details),
                ),
            )
            row = await cur.fetchone()
            assert row is not None  # insert … returning id
            ep.db_id = row[0]
            self._new_ids.append(ep)
            if self.paper and ep.kind == "pair":
                await self._book_pair(conn, event)
        elif event.action == "close":
            if ep.db_id is None:  # opened and closed within one failed interval
                await self._store_event(conn, EpisodeEvent("open", ep))
            await conn.execute(
                f"update {BINARY_OPPORTUNITIES} set closed_at = %s, best_edge = %s, size = %s"
                " where id = %s",
                (ep.closed_at, ep.best_edge, ep.size, ep.db_id),
            )

    async def _book_pair(self, conn: psycopg.AsyncConnection, event: EpisodeEvent) -> None:
        """One equal-share pair per episode (never per message)."""
        ep = event.episode
        fill, market = ep.entry, ep.market
        if fill is None or market is None or fill.shares <= 0:
            return
        if self.positions.get(market.market_id):
            # a paper fill takes no liquidity: a reopened episode on the same book would
            # book the same depth again. One open paper pair per market.
            self.paper_skipped += 1
            return
        yes_px, no_px = fill.worst_prices
        cur = await conn.execute(
            f"insert into {Table.BINARY_POSITIONS} (symbol_id, market_id, opportunity_id,"
            " yes_qty, no_qty, yes_entry_price, no_entry_price, entry_cost, fees_paid,"
            " status, mark_value, opened_at, paper, notes)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s, true, %s)"
            " returning id",
            (
                market.symbol_id,
                market.market_id,
                ep.db_id,
                fill.shares,
                fill.shares,
                yes_px,
                no_px,
                fill.cost,
                fill.fees,
                None,
                ep.opened_at,
                f"paper pair: {fill.shares:.4f} shares each side, locked {fill.profit:.4f}",
            ),
        )
        row = await cur.fetchone()
        assert row is not None  # insert … returning id
        pid = row[0]
        pos = OpenPosition(
            pid, market.market_id, fill.shares, fill.shares, fill.cost + fill.fees, market.fee_rate
        )
        self._remember(pos)
        self._new_ids.append(pos)

    async def _mark(self, conn: psycopg.AsyncConnection, rows: list[PriceRow]) -> None:
        """Open paper positions valued at the bids: what selling both legs now realises."""
        params = []
        for row in rows:
            for pos in self.positions.get(row.market_id, ()):
                if row.stale:
                    continue
                value = mark_value(
                    min(pos.yes_qty, pos.no_qty), row.yes_bid, row.no_bid, pos.fee_rate
                )
                params.append((value, value - pos.cost, pos.id))
        if params:
            async with conn.cursor() as cur:
                await cur.executemany(
                    f"update {Table.BINARY_POSITIONS} set mark_value = %s, profit_loss = %s"
                    " where id = %s and status = 'open'",
                    params,
                )

    async def settle(self) -> int:
        """Resolve open paper positions whose market resolved: 1 per winning share."""
        if not self.paper:
            return 0
        async with self._db_lock:  # one connection: flush and settle take turns
            try:
                conn = await self._db()
                async with conn.transaction():
                    cur = await conn.execute(
                        f"select p.id, p.market_id, p.yes_qty, p.no_qty,"
                        f" coalesce(p.entry_cost, 0) + coalesce(p.fees_paid, 0), m.resolution"
                        f" from {Table.BINARY_POSITIONS} p join {Table.BINARY_MARKETS} m"
                        f" on m.market_id = p.market_id"
                        f" where p.status = 'open' and m.status = 'resolved'"
                    )
                    settled = await cur.fetchall()
                    for pid, market_id, yes_qty, no_qty, cost, resolution in settled:
                        value = settlement_value(yes_qty, no_qty, resolution)
                        await conn.execute(
                            f"update {Table.BINARY_POSITIONS} set status = 'resolved',"
                            " resolution = %s, resolved_at = now(), mark_value = %s,"
                            " profit_loss = %s where id = %s",
                            (resolution, value, value - cost, pid),
                        )
                        self.positions[market_id] = [
                            p for p in self.positions.get(market_id, []) if p.id != pid
                        ]
                return len(settled)
            except (psycopg.Error, OSError) as exc:
                log.warning("polymarket store: settlement failed (%s)", exc.__class__.__name__)
                self._conn = None if self._conn is not None and self._conn.broken else self._conn
                return 0

    # --- redis ----------------------------------------------------------------------
    async def _publish(
        self,
        rows: list[PriceRow],
        events: list[EpisodeEvent],
        markets: dict[str, MarketInfo],
        ts: datetime,
    ) -> None:
        if not self.redis_url or (not rows and not events):
            return
        if time.monotonic() < self._redis_down_until:
            self.publish_failures += 1
            return
        try:
            if self._redis is None:
                self._redis = aioredis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
                )
            pipe = self._redis.pipeline(transaction=False)
            for row in rows:
                market = markets.get(row.market_id)
                symbol = market.symbol if market else row.market_id
                pipe.publish(Channel.BINARY_PRICES, json.dumps(row.payload(symbol, ts)))
            for event in events:
                pipe.publish(Channel.BINARY_ARBITRAGE, json.dumps(_event_payload(event)))
            await pipe.execute()
            self.published += len(rows) + len(events)
        except (RedisError, OSError) as exc:
            self.publish_failures += 1
            self._redis_down_until = time.monotonic() + self.redis_retry_seconds
            log.warning(
                "polymarket: Redis publish failed (%s); storage continues", exc.__class__.__name__
            )


def _price_params(row: PriceRow, ts: datetime) -> tuple:
    return (
        ts,
        row.market_id,
        row.symbol_id,
        row.yes_bid,
        row.yes_ask,
        row.yes_mid,
        row.no_bid,
        row.no_ask,
        row.no_mid,
        row.spread,
        row.edge,
        row.executable_size,
        row.yes_last,
        row.no_last,
        row.arbitrage,
        row.stale,
    )


def _event_payload(event: EpisodeEvent) -> dict:
    ep = event.episode
    return {
        "action": event.action,
        "kind": ep.kind,
        "market_id": ep.key if ep.kind == "pair" else None,
        "event_id": ep.key if ep.kind == "neg_risk" else None,
        "symbol": ep.market.symbol if ep.market else None,
        "opportunity_id": ep.db_id,
        "opened_at": ep.opened_at.isoformat(),
        "closed_at": ep.closed_at.isoformat() if ep.closed_at else None,
        "best_edge": ep.best_edge,
        "size": ep.size,
        "details": ep.details,
    }
