"""Alpaca execution client: the trading REST API seen by the engine's trader.

Beside the Alpaca data client (``data.py``, ``parsing.py``): everything that knows
Alpaca's trading API lives here (the alpaca-py client and its timeouts, the order
payloads, the order status vocabulary, the error mapping, the live-URL guard). The
engine's trader (``streaming/engine/trader.py``) keeps the risk gates and the ``orders``
bookkeeping and calls this module; docs/trading-safety.md describes the whole path.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from analytics.increments import EQUITY, Increments
from analytics.risk import Bracket
from core.contracts import Side
from core.settings import Settings
from storage.symbols import stored_symbol
from streaming.venues.alpaca.parsing import alpaca_symbol

LIVE_HOST = "api.alpaca.markets"  # paper is paper-api.alpaca.markets

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


def normalised_host(url: str) -> str:
    """The host a URL reaches, as DNS sees it: lower case, no port, no trailing dot."""
    host = urlsplit(url.strip()).hostname or ""
    return host.rstrip(".").lower()


def is_live_url(url: str) -> bool:
    """True when ``url`` reaches Alpaca's live trading host, however it is spelt
    (``API.Alpaca.Markets.:443`` included)."""
    return normalised_host(url) == LIVE_HOST


def broker_status(raw: Mapping[str, Any]) -> str:
    """The ``orders.status`` for an Alpaca order as returned by the API."""
    return BROKER_STATUS.get(str(raw.get("status")), "accepted")


def broker_error(exc: Exception) -> tuple[int | None, str]:
    """HTTP status (None for a transport error) and Alpaca's message, at most 500 chars."""
    status = getattr(exc, "status_code", None)
    text = str(exc)
    with contextlib.suppress(ValueError, AttributeError):
        text = json.loads(text).get("message", text)
    return status, text[:500]


def account_numbers(raw: Mapping[str, Any]) -> dict[str, float | bool]:
    """Alpaca's account (numbers as strings) as floats, NaN where absent or unparsable."""

    def num(key: str) -> float:
        try:
            return float(raw.get(key) or "nan")
        except (TypeError, ValueError):
            return float("nan")

    equity = num("equity")
    if math.isnan(equity):
        equity = num("portfolio_value")
    return {
        "equity": equity,
        "last_equity": num("last_equity"),
        "buying_power": num("buying_power"),
        "trading_blocked": bool(raw.get("trading_blocked")),
        "account_blocked": bool(raw.get("account_blocked")),
        "shorting_enabled": bool(raw.get("shorting_enabled")),
    }


def order_payload(
    symbol: str, qty: float, bracket: Bracket, client_id: str, increments: Increments = EQUITY
) -> Any:
    """The alpaca-py request of an entry (docs/trading-safety.md).

    An equity: a bracket, market entry for the day with its take-profit limit and
    stop-loss stop in the symbol's price increments (cents above a dollar, 0.0001 below).
    A crypto pair: Alpaca has no bracket (or any multi-leg) order for crypto and accepts
    only ``gtc`` and ``ioc``, so the entry is a plain market order, good till cancelled, for
    the fractional quantity; its stop and target are recorded on the order row."""
    from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest, StopLossRequest, TakeProfitRequest

    side = OrderSide.BUY if bracket.side is Side.BUY else OrderSide.SELL
    if increments.crypto:
        return MarketOrderRequest(
            symbol=alpaca_symbol(symbol),  # BTCUSD is stored, BTC/USD is Alpaca's name
            qty=qty,
            side=side,
            time_in_force=TimeInForce.GTC,
            client_order_id=client_id,
        )

    def level(price: float) -> float:
        return round(price, increments.price_decimals(price))

    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        side=side,
        time_in_force=TimeInForce.DAY,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=level(bracket.target)),
        stop_loss=StopLossRequest(stop_price=level(bracket.stop)),
        client_order_id=client_id,
    )


def protective_stop_payload(
    symbol: str, qty: float, stop: float, limit: float, client_id: str
) -> Any:
    """A crypto position's stop (``streaming/engine/crypto_exits.py``): a ``stop_limit``
    sell, good till cancelled, in Alpaca's name for the pair."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import StopLimitOrderRequest

    return StopLimitOrderRequest(
        symbol=alpaca_symbol(symbol),
        qty=qty,
        side=OrderSide.SELL,
        time_in_force=TimeInForce.GTC,
        stop_price=stop,
        limit_price=limit,
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
    if override and not settings.alpaca_live and is_live_url(override):
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
        url_override=override,
    )
    # alpaca-py sends requests without a timeout and sleeps 3 s between 429/504 retries;
    # the engine loop must not hang on a broker, and a retry is the next loop's job
    # deliberately replaced on this one client instance (see above)
    client._session.request = functools.partial(  # type: ignore[method-assign]
        client._session.request, timeout=settings.engine_broker_timeout_seconds
    )  # alpaca-py offers no timeout setting: its session's request method is wrapped
    client._retry = 0
    return client


class AlpacaExecution:
    """The calls the trader makes, blocking (the trader runs them in a worker thread)."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.client = client if client is not None else make_client(settings)
        self.paper = not settings.alpaca_live

    def account(self) -> dict[str, float | bool]:
        return account_numbers(self.client.get_account() or {})

    def positions(self) -> set[str]:
        return {str(p.get("symbol")) for p in self.client.get_all_positions() or []}

    def submit_entry(
        self,
        symbol: str,
        qty: float,
        bracket: Bracket,
        client_id: str,
        increments: Increments = EQUITY,
    ) -> Any:
        payload = order_payload(symbol, qty, bracket, client_id, increments)
        return self.client.submit_order(payload)

    def position_available(self, symbol: str) -> float:
        """The quantity of ``symbol`` (stored name) the account holds and may sell now."""
        for p in self.client.get_all_positions() or []:
            if stored_symbol(str(p.get("symbol", ""))) == symbol:
                try:
                    return float(p.get("qty_available") or p.get("qty") or 0.0)
                except (TypeError, ValueError):
                    return 0.0
        return 0.0

    def submit_protective_stop(
        self, symbol: str, qty: float, stop: float, limit: float, client_id: str
    ) -> Any:
        payload = protective_stop_payload(symbol, qty, stop, limit, client_id)
        return self.client.submit_order(payload)

    def order_by_client_id(self, client_id: str) -> Any:
        return self.client.get_order_by_client_id(client_id)
