"""A local server speaking Alpaca's trading REST API (v2), the endpoints alpaca-py's
``TradingClient`` calls for the engine: ``GET /v2/account``, ``GET /v2/positions``,
``POST /v2/orders``, ``GET /v2/orders:by_client_order_id``, ``GET /v2/orders/{id}``,
``GET /v2/clock``, and ``GET /v2/assets/{symbol}`` (a pair's slash URL-encoded) for the
increments of the assets a test puts in ``assets``.

Like Alpaca it authenticates with the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``
headers (401 otherwise), refuses a second order with the same ``client_order_id`` (422),
and answers errors as ``{"code": ..., "message": ...}``. A test can script a rejection,
change the account, and move an order through its lifecycle.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.http_app import start_app

KEY, SECRET = "PKTESTKEY", "test-secret-value"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def account(**overrides: Any) -> dict[str, Any]:
    """A paper account as Alpaca returns it (numbers as strings)."""
    base = {
        "id": "5f2a7c1e-0000-4000-8000-000000000001",
        "account_number": "PA3TEST0001",
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "buying_power": "200000",
        "regt_buying_power": "200000",
        "non_marginable_buying_power": "100000",
        "cash": "100000",
        "portfolio_value": "100000",
        "equity": "100000",
        "last_equity": "100000",
        "long_market_value": "0",
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "multiplier": "2",
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "shorting_enabled": True,
        "created_at": "2024-01-02T15:00:00Z",
    }
    base.update(
        {
            k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in overrides.items()
        }
    )
    return base


def position(symbol: str, qty: float = 10, price: float = 100.0) -> dict[str, Any]:
    return {
        "asset_id": str(uuid.uuid4()),
        "symbol": symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": str(price),
        "qty": str(qty),
        "qty_available": str(qty),
        "side": "long",
        "market_value": str(qty * price),
        "cost_basis": str(qty * price),
        "unrealized_pl": "0",
        "unrealized_plpc": "0",
        "current_price": str(price),
    }


@dataclass
class FakeTrading:
    account: dict[str, Any] = field(default_factory=account)
    positions: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by client_order_id
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)  # by symbol
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    reject: tuple[int, str] | None = None  # the next POST /v2/orders answers this
    order_status: str = "accepted"
    port: int = 0
    _runner: web.AppRunner | None = None

    def posted_orders(self) -> list[dict[str, Any]]:
        return [
            body
            for method, path, body in self.requests
            if method == "POST" and path == "/v2/orders"
        ]

    def calls(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def set_status(
        self, client_order_id: str, status: str, filled_qty: float = 0, price: float | None = None
    ) -> None:
        order = self.orders[client_order_id]
        order.update(status=status, updated_at=_now(), filled_qty=str(filled_qty))
        if status == "filled":
            order.update(filled_at=_now(), filled_avg_price=str(price))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- handlers -----------------------------------------------------------------------
    def _error(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message}, status=status)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = None
        if request.can_read_body:
            body = await request.json()
        self.requests.append((request.method, request.path, body))
        if (
            request.headers.get("APCA-API-KEY-ID") != KEY
            or request.headers.get("APCA-API-SECRET-KEY") != SECRET
        ):
            return self._error(401, 40110000, "request is not authorized")
        request["body"] = body
        return await handler(request)

    async def get_account(self, request: web.Request) -> web.Response:
        return web.json_response(self.account)

    async def get_positions(self, request: web.Request) -> web.Response:
        return web.json_response(self.positions)

    async def get_clock(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"timestamp": _now(), "is_open": True, "next_open": _now(), "next_close": _now()}
        )

    async def post_order(self, request: web.Request) -> web.Response:
        body = request["body"] or {}
        if self.reject is not None:
            status, message = self.reject
            self.reject = None
            return self._error(status, 40310000 if status == 403 else 42210000, message)
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if cid in self.orders:
            return self._error(422, 40010001, "client_order_id must be unique")
        now = _now()
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": cid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid4()),
            "symbol": body.get("symbol"),
            "asset_class": "us_equity",
            "notional": None,
            "qty": str(body.get("qty")),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": body.get("order_class"),
            "order_type": body.get("type"),
            "type": body.get("type"),
            "side": body.get("side"),
            "time_in_force": body.get("time_in_force"),
            "limit_price": None,
            "stop_price": None,
            "status": self.order_status,
            "extended_hours": False,
            "legs": None,
        }
        self.orders[cid] = order
        return web.json_response(order)

    async def get_by_client_id(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.query.get("client_order_id", ""))
        if order is None:
            return self._error(404, 40410000, "order not found")
        return web.json_response(order)

    async def get_asset(self, request: web.Request) -> web.Response:
        asset = self.assets.get(request.match_info["symbol"])
        if asset is None:
            return self._error(404, 40410000, "asset not found")
        return web.json_response(asset)

    async def get_order(self, request: web.Request) -> web.Response:
        for order in self.orders.values():
            if order["id"] == request.match_info["order_id"]:
                return web.json_response(order)
        return self._error(404, 40410000, "order not found")

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> FakeTrading:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/v2/account", self.get_account)
        app.router.add_get("/v2/positions", self.get_positions)
        app.router.add_get("/v2/clock", self.get_clock)
        app.router.add_post("/v2/orders", self.post_order)
        app.router.add_get("/v2/orders:by_client_order_id", self.get_by_client_id)
        app.router.add_get("/v2/orders/{order_id}", self.get_order)
        app.router.add_get("/v2/assets/{symbol}", self.get_asset)
        self._runner, self.port = await start_app(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            await asyncio.sleep(0)
