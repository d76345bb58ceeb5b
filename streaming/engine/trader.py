"""Auto-trading: signals → risk gate → Alpaca bracket orders, every order in ``orders``.

Only when ``AUTO_TRADING_ENABLED=true``; paper unless ``ALPACA_LIVE=true`` (DESIGN §8).
For each intent, in order (the first failing gate records the order as ``blocked`` with
that reason and nothing reaches the broker):

1. ``kill_switch`` — the setting or the Redis key (``killswitch.py``), read per order;
2. ``market_closed`` — the symbol's market calendar (``analytics.sessions``);
3. ``no_levels`` — no ATR, so no stop/target;
4. account gates from ``GET /v2/account`` + ``GET /v2/positions`` (fetched at most once
   per loop): ``account_blocked``, ``trading_blocked``, ``min_balance`` (equity ≥
   ``MIN_ACCOUNT_BALANCE``), ``daily_loss`` ((equity − last_equity) / last_equity × 100 ≥
   −``MAX_DAILY_LOSS_PCT``), ``max_positions`` (open positions plus our pending entries <
   ``MAX_POSITIONS``), ``position_open`` (one position or pending entry per symbol),
   ``shorting_disabled`` (a SELL entry on an account that cannot short);
5. ``size_zero`` — ``analytics.risk.position_size`` gave no whole share.

Account-wide limits come from the settings; the risk per trade from the symbol's
``strategy_configs.risk_per_trade_pct`` when set, else ``RISK_PER_TRADE_PCT``.

Idempotency: the ``client_order_id`` is derived from strategy, symbol and signal time and
the ``orders`` row is inserted (unique) *before* the request, so the same signal can never
be sent twice, whatever the loop does. Lifecycle: orders not yet final are polled by
client id (a few per loop, each at most every ``RECONCILE_EVERY_S``). All broker calls go
through a token bucket below Alpaca's 200 requests/minute; when it is empty the work
waits for a later loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
import redis.asyncio as aioredis

from analytics.risk import Bracket, bracket_levels, position_size
from analytics.sessions import ALWAYS_OPEN, UnknownMarketError, session_bounds
from core.contracts import Side
from core.settings import Settings
from streaming.engine import killswitch
from streaming.engine.ratelimit import TokenBucket

log = logging.getLogger(__name__)

LIVE_HOST = "api.alpaca.markets"  # paper is paper-api.alpaca.markets
OPEN_STATUSES = ("new", "submitted", "accepted", "partially_filled")
RECONCILE_EVERY_S = 10.0
RECONCILE_PER_LOOP = 3
ACCOUNT_MAX_AGE_S = 2.0
INTENT_MAX_AGE_S = 30.0  # an intent the rate limit kept waiting this long is dropped

# Alpaca order status → orders.status
BROKER_STATUS = {
    "new": "accepted",
    "accepted": "accepted",
    "pending_new": "submitted",
    "accepted_for_bidding": "accepted",
    "pending_review": "submitted",
    "held": "accepted",
    "calculated": "accepted",
    "stopped": "accepted",
    "suspended": "accepted",
    "pending_cancel": "accepted",
    "pending_replace": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "canceled",
    "replaced": "canceled",
    "expired": "expired",
    "done_for_day": "expired",
    "rejected": "rejected",
}


@dataclass(frozen=True)
class OrderIntent:
    strategy_id: int
    strategy: str
    symbol_id: int
    symbol: str
    market: str
    side: Side
    signal_time: datetime
    price: float
    atr: float | None
    stop_multiplier: float = 1.5
    target_multiplier: float = 3.0
    risk_pct: float | None = None
    reason: str = ""

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.strategy_id, self.symbol, self.signal_time)


def client_order_id(strategy_id: int, symbol: str, signal_time: datetime) -> str:
    """Deterministic: the same signal always maps to the same broker order id."""
    safe = re.sub(r"[^A-Za-z0-9]", "", symbol)[:20]
    stamp = signal_time.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"mf-{strategy_id}-{safe}-{stamp}"


@dataclass(frozen=True)
class AccountView:
    equity: float
    last_equity: float
    buying_power: float
    trading_blocked: bool = False
    account_blocked: bool = False
    shorting_enabled: bool = False

    @classmethod
    def from_broker(cls, raw: dict[str, Any]) -> AccountView:
        def num(key: str) -> float:
            try:
                return float(raw.get(key) or "nan")
            except (TypeError, ValueError):
                return float("nan")

        equity = num("equity")
        if math.isnan(equity):
            equity = num("portfolio_value")
        return cls(
            equity=equity,
            last_equity=num("last_equity"),
            buying_power=num("buying_power"),
            trading_blocked=bool(raw.get("trading_blocked")),
            account_blocked=bool(raw.get("account_blocked")),
            shorting_enabled=bool(raw.get("shorting_enabled")),
        )


@dataclass(frozen=True)
class Limits:
    min_balance: float
    max_positions: int
    max_daily_loss_pct: float


def account_gate(
    side: Side, symbol: str, account: AccountView, holding: set[str], limits: Limits
) -> str | None:
    """The first account-level reason to refuse a new position, or None (pure)."""
    if account.account_blocked:
        return "account_blocked"
    if account.trading_blocked:
        return "trading_blocked"
    if not account.equity >= limits.min_balance:  # NaN equity blocks too
        return "min_balance"
    if account.last_equity > 0:
        day_pct = (account.equity - account.last_equity) / account.last_equity * 100.0
        if day_pct < -limits.max_daily_loss_pct:
            return "daily_loss"
    if symbol in holding:
        return "position_open"
    if len(holding) >= limits.max_positions:
        return "max_positions"
    if side is Side.SELL and not account.shorting_enabled:
        return "shorting_disabled"
    return None


def market_open(market: str, now: datetime) -> bool:
    if market == ALWAYS_OPEN:
        return True
    try:
        bounds = session_bounds(market, now.astimezone(UTC).date())
    except (UnknownMarketError, ValueError):
        return False
    return bounds is not None and bounds[0] <= now < bounds[1]


def bracket_payload(symbol: str, qty: int, bracket: Bracket, client_id: str) -> Any:
    """The alpaca-py request: market entry, take-profit limit, stop-loss stop, 2-dp prices."""
    from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest, StopLossRequest, TakeProfitRequest

    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY if bracket.side is Side.BUY else OrderSide.SELL,
        time_in_force=TimeInForce.DAY,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=round(bracket.target, 2)),
        stop_loss=StopLossRequest(stop_price=round(bracket.stop, 2)),
        client_order_id=client_id,
    )


def make_client(settings: Settings) -> Any:
    """alpaca-py TradingClient: paper unless ALPACA_LIVE, URL from ALPACA_TRADING_URL."""
    from alpaca.trading.client import TradingClient

    if settings.alpaca_api_key is None or settings.alpaca_secret_key is None:
        raise RuntimeError(
            "AUTO_TRADING_ENABLED=true needs ALPACA_API_KEY and ALPACA_SECRET_KEY "
            "(or APCA_API_KEY_ID / APCA_API_SECRET_KEY)"
        )
    override = settings.alpaca_trading_url
    if override and not settings.alpaca_live and urlsplit(override).hostname == LIVE_HOST:
        # the URL alone must not turn paper trading live (and record live orders as paper)
        raise RuntimeError(
            f"ALPACA_TRADING_URL points at live trading ({LIVE_HOST}) but ALPACA_LIVE is not "
            "true; set ALPACA_LIVE=true to trade live, or unset ALPACA_TRADING_URL for paper"
        )
    client = TradingClient(
        api_key=settings.alpaca_api_key.get_secret_value(),
        secret_key=settings.alpaca_secret_key.get_secret_value(),
        paper=not settings.alpaca_live,
        raw_data=True,
        url_override=settings.alpaca_trading_url,
    )
    # alpaca-py sends requests without a timeout and sleeps 3 s between 429/504 retries;
    # the engine loop must not hang on a broker, and a retry is the next loop's job
    client._session.request = functools.partial(
        client._session.request, timeout=settings.engine_broker_timeout_seconds
    )
    client._retry = 0
    return client


class RateLimited(Exception):
    pass


def _broker_error(exc: Exception) -> tuple[int | None, str]:
    status = getattr(exc, "status_code", None)
    text = str(exc)
    with contextlib.suppress(ValueError, AttributeError):
        text = json.loads(text).get("message", text)
    return status, text[:500]


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
        client: Any | None = None,
        bucket: TokenBucket | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.paper = not settings.alpaca_live
        self.redis = redis_client
        self.client = client if client is not None else make_client(settings)
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
            account = AccountView.from_broker(await self._call(self.client.get_account))
            positions = await self._call(self.client.get_all_positions)
            self._account = account
            self._positions = {str(p.get("symbol")) for p in positions or []}
            self._loop_id = loop_id
            self._account_at = time.monotonic()
        return self._account, set(self._positions)

    # --- orders table -----------------------------------------------------------------
    async def _insert(
        self,
        conn: psycopg.AsyncConnection,
        intent: OrderIntent,
        status: str,
        reason: str | None,
        bracket: Bracket | None = None,
        qty: int | None = None,
    ) -> bool:
        """Insert the order row; False when this client_order_id already exists."""
        cur = await conn.execute(
            """
            insert into orders (client_order_id, symbol_id, strategy_id, side, qty, order_type,
                                entry, stop, target, status, reason, paper)
            values (%s, %s, %s, %s, %s, 'bracket', %s, %s, %s, %s, %s, %s)
            on conflict (client_order_id) do nothing
            returning id
            """,
            (
                intent.client_order_id,
                intent.symbol_id,
                intent.strategy_id,
                intent.side.value,
                qty,
                intent.price,
                bracket.stop if bracket else None,
                bracket.target if bracket else None,
                status,
                reason,
                self.paper,
            ),
        )
        return await cur.fetchone() is not None

    async def _pending_symbols(self, conn: psycopg.AsyncConnection) -> set[str]:
        cur = await conn.execute(
            "select distinct s.symbol from orders o join symbols s on s.id = o.symbol_id "
            "where o.status = any(%s) and o.paper = %s",
            (list(OPEN_STATUSES), self.paper),
        )
        return {r[0] for r in await cur.fetchall()}

    async def _block(
        self,
        conn: psycopg.AsyncConnection,
        intent: OrderIntent,
        why: str,
        bracket: Bracket | None = None,
    ) -> None:
        if await self._insert(conn, intent, "blocked", why, bracket):
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
        if not queue:
            return
        pending: set[str] | None = None
        for n, intent in enumerate(queue):
            if await killswitch.is_on(self.redis, self.settings.kill_switch):
                await self._block(conn, intent, "kill_switch")
                continue
            if not market_open(intent.market, now):
                await self._block(conn, intent, "market_closed")
                continue
            bracket = (
                bracket_levels(
                    intent.side,
                    intent.price,
                    intent.atr,
                    intent.stop_multiplier,
                    intent.target_multiplier,
                )
                if intent.atr is not None
                else None
            )
            if bracket is None:
                await self._block(conn, intent, "no_levels")
                continue
            try:
                account, holding = await self._account_and_positions(loop_id)
            except RateLimited:
                self._hold(queue[n:], "rate_limited")
                return
            except Exception as exc:  # APIError (401, 5xx) or a transport error
                # the broker cannot be asked now: retry on a later loop, and never let a
                # broker outage end the engine's tick
                status, text = _broker_error(exc)
                self.counters.errors += 1
                log.warning(
                    "broker account unavailable (%s%s: %s): %d order(s) wait",
                    exc.__class__.__name__,
                    f" HTTP {status}" if status else "",
                    text[:200],
                    len(queue) - n,
                )
                self._hold(queue[n:], "broker_unavailable")
                return
            if pending is None:
                pending = await self._pending_symbols(conn)
            why = account_gate(intent.side, intent.symbol, account, holding | pending, self.limits)
            if why:
                await self._block(conn, intent, why, bracket)
                continue
            risk = (
                intent.risk_pct if intent.risk_pct is not None else self.settings.risk_per_trade_pct
            )
            qty = position_size(
                account.equity, risk, intent.price, bracket.stop, account.buying_power
            )
            if qty <= 0:
                await self._block(conn, intent, "size_zero", bracket)
                continue
            if self.bucket.available() < 1:  # held back with the rest, in order
                self._hold(queue[n:], "rate_limited")
                return
            if await self._killed_now():
                await self._block(conn, intent, "kill_switch", bracket)
                continue
            if not await self._insert(conn, intent, "new", intent.reason or None, bracket, qty):
                continue  # this signal was handled before: never send it twice
            await self._submit(conn, intent, bracket, qty)
            pending.add(intent.symbol)

    def _hold(self, intents: list[OrderIntent], why: str) -> None:
        self._queue.extend((intent, why) for intent in intents)

    async def _killed_now(self) -> bool:
        # read again right before the request: the switch may have flipped mid-loop
        return await killswitch.is_on(self.redis, self.settings.kill_switch)

    async def _submit(
        self, conn: psycopg.AsyncConnection, intent: OrderIntent, bracket: Bracket, qty: int
    ) -> None:
        request = bracket_payload(intent.symbol, qty, bracket, intent.client_order_id)
        try:
            raw = await self._call(self.client.submit_order, request)
        except RateLimited:
            await self._update(conn, intent.client_order_id, "new", error="rate limited")
            return
        except Exception as exc:  # APIError or a transport error
            status, text = _broker_error(exc)
            if status is not None and 400 <= status < 500:
                self.counters.rejected += 1
                log.warning("order %s rejected (%s): %s", intent.client_order_id, status, text)
                await self._update(
                    conn, intent.client_order_id, "rejected", error=f"HTTP {status}: {text}"
                )
            else:
                # unknown outcome (timeout, 5xx): reconciliation asks the broker by client id
                self.counters.errors += 1
                log.warning(
                    "order %s: no answer (%s)", intent.client_order_id, exc.__class__.__name__
                )
                await self._update(
                    conn,
                    intent.client_order_id,
                    "submitted",
                    error=f"{exc.__class__.__name__}: {text}"[:500],
                )
            return
        self.counters.submitted += 1
        log.info(
            "order %s sent: %s %s %s", intent.client_order_id, intent.side.value, qty, intent.symbol
        )
        await self._apply(conn, intent.client_order_id, raw or {}, submitted=True)

    async def _update(
        self, conn: psycopg.AsyncConnection, client_id: str, status: str, error: str | None = None
    ) -> None:
        await conn.execute(
            "update orders set status = %s, error = %s, updated_at = now(),"
            " submitted_at = coalesce(submitted_at, now()) where client_order_id = %s",
            (status, error, client_id),
        )

    async def _apply(
        self,
        conn: psycopg.AsyncConnection,
        client_id: str,
        raw: dict[str, Any],
        submitted: bool = False,
    ) -> None:
        status = BROKER_STATUS.get(str(raw.get("status")), "accepted")

        def num(key: str) -> float | None:
            try:
                return float(raw[key]) if raw.get(key) not in (None, "") else None
            except (TypeError, ValueError):
                return None

        await conn.execute(
            """
            update orders set status = %s, broker_order_id = coalesce(%s, broker_order_id),
                raw = %s, updated_at = now(), error = null,
                submitted_at = coalesce(submitted_at, %s::timestamptz, now()),
                filled_at = %s::timestamptz, filled_qty = %s, filled_avg_price = %s
            where client_order_id = %s
            """,
            (
                status,
                raw.get("id"),
                json.dumps(raw, default=str),
                raw.get("submitted_at"),
                raw.get("filled_at"),
                num("filled_qty"),
                num("filled_avg_price"),
                client_id,
            ),
        )

    async def reconcile(self, conn: psycopg.AsyncConnection) -> None:
        """Poll a few unfinished orders by client id and record what the broker says."""
        now = self._clock().timestamp()
        cur = await conn.execute(
            "select client_order_id, extract(epoch from now() - created_at)::float8 from orders"
            " where status = any(%s) and paper = %s order by updated_at limit 50",
            (list(OPEN_STATUSES), self.paper),
        )
        rows = await cur.fetchall()
        due = [
            (cid, age)
            for cid, age in rows
            if now - self._polled.get(cid, float("-inf")) >= RECONCILE_EVERY_S
        ]
        for cid, age in due[:RECONCILE_PER_LOOP]:
            try:
                raw = await self._call(self.client.get_order_by_client_id, cid)
            except RateLimited:
                return
            except Exception as exc:
                status, _ = _broker_error(exc)
                self._polled[cid] = now
                if status == 404 and age > 60:
                    await self._update(conn, cid, "rejected", error="unknown at the broker")
                continue
            self._polled[cid] = now
            self.counters.reconciled += 1
            await self._apply(conn, cid, raw or {})
