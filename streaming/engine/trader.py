"""Auto-trading: signals → risk gates → broker bracket orders, every order in ``orders``.

Only when ``AUTO_TRADING_ENABLED=true``; paper unless ``ALPACA_LIVE=true``. The broker is
reached through the venue's execution client (``streaming/venues/alpaca/execution.py``);
this module keeps the gates and the bookkeeping. For each intent, in order (the first
failing gate records the order as ``blocked`` with that reason and nothing reaches the
broker; docs/trading-safety.md lists them with their settings):

1. ``kill_switch`` — the setting or the Redis key (``killswitch.py``), read per order;
2. ``market_closed`` — the symbol's market calendar (``analytics.sessions``);
3. ``stale_price`` — the price is older than ``ORDER_MAX_PRICE_AGE_SECONDS``;
4. ``bad_parameters`` — multipliers or risk outside the strategy bounds;
5. ``no_levels`` — no ATR, so no stop/target (in the symbol's price increments);
   ``no_crypto_short`` — a sell of a crypto pair (Alpaca cannot short crypto);
6. account gates from the broker's account (fetched at most once per loop):
   ``account_blocked``, ``trading_blocked``, ``min_balance``, ``equity_unknown`` (the
   daily loss cannot be computed), ``daily_loss``, ``shorting_disabled``;
7. ``size_zero`` (the risk arithmetic gives less than the symbol's minimum order: a whole
   share for equities, a fraction for crypto) or ``order_cap`` (the caps
   ``MAX_ORDER_QTY`` / ``MAX_ORDER_NOTIONAL`` leave nothing);
8. in one transaction under a lock, with the order row (``orders.reserve``):
   ``position_open``, ``max_positions``, ``strategy_max_positions``.

Idempotency: the ``client_order_id`` is a function of the signal's identity (strategy,
symbol, the signal row's own timestamp to the microsecond), and the row is inserted
(unique) *before* the request, so a signal is sent at most once, whatever the retries.
Lifecycle: orders not yet final are polled by client id (a few per loop, each at most every
``RECONCILE_EVERY_S``); a filled crypto entry then gets its protective stop
(``crypto_exits.py``: Alpaca has no crypto bracket). All broker calls go through a token
bucket below Alpaca's 200 requests/minute; when it is empty the work waits for a later loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis.asyncio as aioredis

from analytics.risk import Bracket, bracket_levels, cap_quantity, position_size, within_caps
from core.settings import Settings
from strategies.gates import (
    AccountView,
    Limits,
    account_gate,
    asset_gate,
    market_open,
    position_gate,
    price_gate,
)
from strategies.intents import OrderIntent, parameters_ok
from streaming.engine import killswitch, orders
from streaming.engine.crypto_exits import protect_filled_entries
from streaming.engine.ratelimit import TokenBucket
from streaming.venues.alpaca.execution import AlpacaExecution, broker_error, broker_status

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 10.0
RECONCILE_PER_LOOP = 3
ACCOUNT_MAX_AGE_S = 2.0
INTENT_MAX_AGE_S = 30.0  # an intent the rate limit kept waiting this long is dropped


def order_row(intent: OrderIntent, paper: bool) -> orders.OrderRow:
    """The ``orders`` row an intent is recorded as, before anything reaches the broker."""
    return orders.OrderRow(
        intent.client_order_id,
        intent.symbol_id,
        intent.strategy_id,
        intent.side.value,
        intent.price,
        paper,
        "market" if intent.increments.crypto else "bracket",
    )


class RateLimited(Exception):
    pass


@dataclass
class TraderCounters:
    submitted: int = 0
    rejected: int = 0
    blocked: int = 0
    errors: int = 0
    broker_calls: int = 0
    reconciled: int = 0
    blocked_by: dict[str, int] = field(default_factory=dict)


class Trader:
    def __init__(
        self,
        settings: Settings,
        redis_client: aioredis.Redis,
        broker: AlpacaExecution | None = None,
        bucket: TokenBucket | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.paper = not settings.alpaca_live
        self.redis = redis_client
        self.broker = broker if broker is not None else AlpacaExecution(settings)
        self.bucket = bucket or TokenBucket(settings.engine_broker_requests_per_minute)
        self.limits = Limits(
            settings.min_account_balance, settings.max_positions, settings.max_daily_loss_pct
        )
        self.counters = TraderCounters()
        self._clock = clock
        # intents waiting for a later loop, with why: "rate_limited" or "broker_unavailable"
        self._queue: list[tuple[OrderIntent, str]] = []
        self._loop_id: int | None = None
        self._account: AccountView | None = None
        self._positions: set[str] = set()
        self._account_at = float("-inf")
        self._polled: dict[str, float] = {}

    # --- broker calls (rate limited, run in a worker thread) -------------------------
    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self.bucket.try_take():
            raise RateLimited
        self.counters.broker_calls += 1
        return await asyncio.to_thread(fn, *args)

    async def _account_and_positions(self, loop_id: int) -> tuple[AccountView, set[str]]:
        """Fetched at most once per loop and shared by every intent of that loop; a
        snapshot younger than ``ACCOUNT_MAX_AGE_S`` is reused by the next loop too, so an
        order held back by the rate limit does not pay for a second fetch."""
        fresh = time.monotonic() - self._account_at < ACCOUNT_MAX_AGE_S
        if self._account is None or (self._loop_id != loop_id and not fresh):
            if self.bucket.available() < 2:
                raise RateLimited
            account = AccountView.from_numbers(await self._call(self.broker.account))
            self._positions = set(await self._call(self.broker.positions))
            self._account = account
            self._loop_id = loop_id
            self._account_at = time.monotonic()
        return self._account, set(self._positions)

    async def _block(
        self,
        conn: psycopg.AsyncConnection,
        intent: OrderIntent,
        why: str,
        bracket: Bracket | None = None,
        inserted: bool | None = None,
    ) -> None:
        if inserted is None:
            inserted = await orders.insert(
                conn, order_row(intent, self.paper), "blocked", why, bracket
            )
        if inserted:
            self.counters.blocked += 1
            self.counters.blocked_by[why] = self.counters.blocked_by.get(why, 0) + 1
            log.info("order %s blocked: %s", intent.client_order_id, why)

    # --- the loop's entry points --------------------------------------------------------
    async def process(
        self,
        conn: psycopg.AsyncConnection,
        intents: list[OrderIntent],
        loop_id: int,
        now: datetime | None = None,
    ) -> None:
        """Gate, size and send this loop's intents (plus any the rate limit held back)."""
        now = now or self._clock()
        queue: list[OrderIntent] = []
        for waiting, why in self._queue:
            if (now - waiting.signal_time).total_seconds() <= INTENT_MAX_AGE_S:
                queue.append(waiting)
            else:  # waited too long: recorded with the reason it waited, never lost
                await self._block(conn, waiting, why)
        queue.extend(intents)
        self._queue = []
        for n, intent in enumerate(queue):
            held = await self._gate_and_send(conn, intent, loop_id, now)
            if held is not None:
                self._queue.extend((later, held) for later in queue[n:])
                return

    async def _gate_and_send(
        self, conn: psycopg.AsyncConnection, intent: OrderIntent, loop_id: int, now: datetime
    ) -> str | None:
        """Handle one intent; returns why it (and the rest of the queue) must wait, if so."""
        s = self.settings
        if await killswitch.is_on(self.redis, s.kill_switch):
            await self._block(conn, intent, "kill_switch")
            return None
        if not market_open(intent.market, now):
            await self._block(conn, intent, "market_closed")
            return None
        stale = price_gate(intent.price_time, now, s.order_max_price_age_seconds)
        if stale:
            await self._block(conn, intent, stale)
            return None
        if not parameters_ok(intent):
            await self._block(conn, intent, "bad_parameters")
            return None
        bracket = None
        increments = intent.increments
        if intent.atr is not None:
            mults = (intent.stop_multiplier, intent.target_multiplier)
            bracket = bracket_levels(intent.side, intent.price, intent.atr, *mults, increments)
        if bracket is None:
            await self._block(conn, intent, "no_levels")
            return None
        no_short = asset_gate(intent.side, increments.crypto)
        if no_short:
            await self._block(conn, intent, no_short, bracket)
            return None
        try:
            account, held = await self._account_and_positions(loop_id)
        except RateLimited:
            return "rate_limited"
        except Exception as exc:  # APIError (401, 5xx) or a transport error
            # the broker cannot be asked now: retry on a later loop, and never let a
            # broker outage end the engine's tick
            status, text = broker_error(exc)
            self.counters.errors += 1
            log.warning(
                "broker account unavailable (%s%s: %s): orders wait",
                exc.__class__.__name__,
                f" HTTP {status}" if status else "",
                text[:200],
            )
            return "broker_unavailable"
        why = account_gate(intent.side, account, self.limits, intent.max_daily_loss_pct)
        if why:
            await self._block(conn, intent, why, bracket)
            return None
        risk = intent.risk_pct if intent.risk_pct is not None else s.risk_per_trade_pct
        sized = position_size(
            account.equity, risk, intent.price, bracket.stop, account.buying_power, increments
        )
        caps = (s.max_order_qty, s.max_order_notional)
        qty = cap_quantity(sized, intent.price, *caps, increments)
        if qty <= 0 or not within_caps(qty, intent.price, s.max_order_qty, s.max_order_notional):
            await self._block(conn, intent, "size_zero" if sized <= 0 else "order_cap", bracket)
            return None
        if self.bucket.available() < 1:  # held back with the rest, in order
            return "rate_limited"
        if await killswitch.is_on(self.redis, s.kill_switch):  # it may have flipped mid-loop
            await self._block(conn, intent, "kill_switch", bracket)
            return None

        def gate(book: orders.Book) -> str | None:
            return position_gate(
                intent.symbol,
                book.holding,
                book.of(intent.strategy_id),
                self.limits.max_positions,
                intent.max_positions,
            )

        inserted, blocked = await orders.reserve(
            conn, order_row(intent, self.paper), held, gate, bracket, qty, intent.reason or None
        )
        if blocked is not None:
            await self._block(conn, intent, blocked, bracket, inserted=inserted)
        elif inserted:  # else this signal was handled before: never send it twice
            await self._submit(conn, intent, bracket, qty)
        return None

    async def _submit(
        self, conn: psycopg.AsyncConnection, intent: OrderIntent, bracket: Bracket, qty: float
    ) -> None:
        cid = intent.client_order_id
        submit = self.broker.submit_entry
        try:
            raw = await self._call(submit, intent.symbol, qty, bracket, cid, intent.increments)
        except RateLimited:
            await orders.set_status(conn, cid, "new", error="rate limited")
            return
        except Exception as exc:  # APIError or a transport error
            status, text = broker_error(exc)
            if status is not None and 400 <= status < 500:
                self.counters.rejected += 1
                log.warning("order %s rejected (%s): %s", cid, status, text)
                await orders.set_status(conn, cid, "rejected", error=f"HTTP {status}: {text}")
            else:
                # unknown outcome (timeout, 5xx): reconciliation asks the broker by client id
                self.counters.errors += 1
                log.warning("order %s: no answer (%s)", cid, exc.__class__.__name__)
                await orders.set_status(
                    conn, cid, "submitted", error=f"{exc.__class__.__name__}: {text}"[:500]
                )
            return
        self.counters.submitted += 1
        log.info("order %s sent: %s %g %s", cid, intent.side.value, qty, intent.symbol)
        raw = raw or {}
        await orders.apply_broker(conn, cid, raw, broker_status(raw))

    async def reconcile(self, conn: psycopg.AsyncConnection) -> None:
        """Poll a few unfinished orders by client id and record what the broker says."""
        now = self._clock().timestamp()
        rows = await orders.unfinished(conn, self.paper)
        due = [
            (cid, age)
            for cid, age in rows
            if now - self._polled.get(cid, float("-inf")) >= RECONCILE_EVERY_S
        ]
        for cid, age in due[:RECONCILE_PER_LOOP]:
            try:
                raw = await self._call(self.broker.order_by_client_id, cid)
            except RateLimited:
                return
            except Exception as exc:
                code, _ = broker_error(exc)
                self._polled[cid] = now
                if code == 404 and age > 60:
                    await orders.set_status(conn, cid, "rejected", error="unknown at the broker")
                continue
            self._polled[cid] = now
            self.counters.reconciled += 1
            raw = raw or {}
            status = broker_status(raw)
            await orders.apply_broker(conn, cid, raw, status)
            if status in orders.FILLED_STATUSES:
                # no longer pending, and maybe not yet in the cached positions: the next
                # intent must see the new position, so the account is fetched afresh
                self._account = None
        try:  # a filled crypto entry gets its stop (crypto_exits.py)
            await protect_filled_entries(conn, self.broker, self._call, self.paper)
        except RateLimited:
            return
