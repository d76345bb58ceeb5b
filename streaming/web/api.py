"""The JSON API under ``/api``: what a page needs when it opens; live updates then come over
``/ws``. Each endpoint's docstring is its OpenAPI description (``/openapi.json``, ``/docs``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from strategies.model import DefinitionError
from streaming.web.queries import TIMEFRAMES, NotFound, Queries, UnknownSymbol

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024

Handler = Callable[[Request], Awaitable[Any]]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def _symbol(request: Request) -> str:
    symbol = (request.path_params.get("symbol") or request.query_params.get("symbol", "")).strip()
    if not symbol:
        raise ValueError("symbol= is required")
    return symbol.upper()


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Run ``handler`` and turn its result or the usual failures into JSON answers."""

    async def run(request: Request) -> Response:
        try:
            result = await handler(request)
        except UnknownSymbol as exc:
            return error(404, f"unknown symbol {exc}")
        except NotFound as exc:
            return error(404, str(exc))
        except (ValueError, DefinitionError) as exc:
            return error(400, str(exc))
        except psycopg.errors.CheckViolation as exc:
            return error(400, f"refused by the database: {exc.diag.constraint_name}")
        except psycopg.Error as exc:
            log.warning("query for %s failed: %s", request.url.path, type(exc).__name__)
            return error(503, "database unavailable; live updates still flow")
        return result if isinstance(result, Response) else JSONResponse(result)

    run.__doc__ = handler.__doc__
    run.__name__ = handler.__name__
    return run


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValueError("request body too large")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def queries(request: Request) -> Queries:
    found: Queries = request.app.state.queries
    return found


async def health(request: Request) -> dict[str, Any]:
    """
    summary: Liveness and whether the Redis subscription is up (no token needed).
    responses:
      200: {description: "{ok, redis}"}
    """
    return {"ok": True, "redis": request.app.state.hub.subscribed.is_set()}


async def symbols(request: Request) -> dict[str, Any]:
    """
    summary: Active symbols with time zone and latest market state.
    """
    return {"symbols": await queries(request).symbols()}


async def watchlist(request: Request) -> dict[str, Any]:
    """
    summary: One row per symbol - price, change, state, pressure, CVD, POC/VA, nearest LVN,
      last signal. From the watchlist_latest mart when it exists, else the raw tables.
    """
    return await queries(request).watchlist()


async def candles(request: Request) -> dict[str, Any]:
    """
    summary: Candles of a symbol, oldest first, aggregated in the market's time zone.
    parameters:
      - {name: symbol, in: query, required: true, schema: {type: string}}
      - {name: tf, in: query, schema: {type: string, enum: [1m, 5m, 15m, 30m, 1h, 1d]}}
      - {name: limit, in: query, schema: {type: integer, default: 390}}
    """
    tf = request.query_params.get("tf", "1m")
    return await queries(request).candles(_symbol(request), _int(request, "limit", 390), tf)


async def flow(request: Request) -> dict[str, Any]:
    """
    summary: Delta per bar and CVD at each bar's end, same bars as /api/candles.
    parameters:
      - {name: symbol, in: query, required: true, schema: {type: string}}
      - {name: tf, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer}}
    """
    tf = request.query_params.get("tf", "1m")
    return await queries(request).flow(_symbol(request), _int(request, "limit", 390), tf)


async def profile(request: Request) -> dict[str, Any]:
    """
    summary: Latest session profile - POC/VAH/VAL, LVNs/HVNs, buy/sell volume per price
      level - and the naked POCs of earlier sessions.
    parameters:
      - {name: symbol, in: query, required: true, schema: {type: string}}
    """
    return await queries(request).profile(_symbol(request))


async def signals(request: Request) -> dict[str, Any]:
    """
    summary: Recent signals, newest first, optionally of one symbol or strategy.
    parameters:
      - {name: symbol, in: query, schema: {type: string}}
      - {name: strategy, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 50}}
    """
    symbol = request.query_params.get("symbol")
    return {
        "signals": await queries(request).signals(
            _int(request, "limit", 50),
            symbol.upper() if symbol else None,
            request.query_params.get("strategy"),
        )
    }


async def states(request: Request) -> dict[str, Any]:
    """
    summary: Recent market states of a symbol, newest first.
    parameters:
      - {name: symbol, in: query, required: true, schema: {type: string}}
    """
    return {"states": await queries(request).states(_symbol(request), _int(request, "limit", 50))}


async def strategies(request: Request) -> dict[str, Any]:
    """
    summary: Strategies with signal counts, per-symbol configs and, where the
      strategy_performance mart exists, their performance.
    """
    return await queries(request).strategies()


async def update_strategy(request: Request) -> dict[str, Any]:
    """
    summary: Switch a strategy on/off or change its cooldown or definition.
    description: Body {active?, cooldown_seconds?, definition?}. Validated by the engine's
      parser; needs the token (or, without one configured, a loopback client).
    responses:
      200: {description: the stored strategy}
      400: {description: invalid change, with the reason}
      401: {description: missing or wrong token}
    """
    change = await _json_body(request)
    return await queries(request).update_strategy(int(request.path_params["id"]), change)


async def put_config(request: Request) -> dict[str, Any]:
    """
    summary: Create or replace a strategy's config for one symbol.
    description: Body {enabled, parameters, risk_per_trade_pct, max_positions}; validated
      as the engine validates it; same access rule as PATCH /api/strategies/{id}.
    """
    config = await _json_body(request)
    return await queries(request).put_config(
        int(request.path_params["id"]), _symbol(request), config
    )


async def orders(request: Request) -> dict[str, Any]:
    """
    summary: Recent orders, net positions from fills, open Polymarket positions (read-only).
    """
    return await queries(request).orders(_int(request, "limit", 200))


async def polymarket(request: Request) -> dict[str, Any]:
    """
    summary: Active Polymarket markets with their latest YES/NO quotes, spread and edge;
      open opportunities; recent episodes.
    """
    return await queries(request).polymarket(_int(request, "limit", 100))


async def backtests(request: Request) -> dict[str, Any]:
    """
    summary: Stored backtest runs, newest first, with their headline metrics (trades, total
      P&L, win rate, profit factor, max drawdown %, Sharpe); read-only.
    parameters:
      - {name: strategy, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 50, maximum: 500}}
    responses:
      200: {description: "{runs: [...]}"}
    """
    strategy = request.query_params.get("strategy")
    return await queries(request).backtests(_int(request, "limit", 50), strategy)


async def backtest(request: Request) -> dict[str, Any]:
    """
    summary: One backtest run - parameters, status, metrics per run and per symbol (by_symbol),
      its trades (trades_list), daily stats (daily) and the equity curve with drawdown
      (equity), thinned to at most `points` minutes with the first and last kept; read-only.
    parameters:
      - {name: run_id, in: path, required: true, schema: {type: integer}}
      - {name: points, in: query, schema: {type: integer, default: 2000, maximum: 20000}}
      - {name: trades, in: query, schema: {type: integer, default: 2000, maximum: 10000}}
    responses:
      200: {description: the run}
      404: {description: no such run}
    """
    return await queries(request).backtest(
        int(request.path_params["run_id"]),
        _int(request, "points", 2000),
        _int(request, "trades", 2000),
    )


async def timeframes(request: Request) -> dict[str, Any]:
    """
    summary: The candle timeframes /api/candles accepts.
    """
    return {"timeframes": list(TIMEFRAMES)}


def _route(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
    return Route(path, endpoint(handler), methods=list(methods), name=handler.__name__)


ROUTES = [
    _route("/api/health", health),
    _route("/api/symbols", symbols),
    _route("/api/watchlist", watchlist),
    _route("/api/timeframes", timeframes),
    _route("/api/candles", candles),
    _route("/api/flow", flow),
    _route("/api/profile", profile),
    _route("/api/signals", signals),
    _route("/api/states", states),
    _route("/api/strategies", strategies),
    _route("/api/strategies/{id:int}", update_strategy, ("PATCH",)),
    _route("/api/strategies/{id:int}/configs/{symbol}", put_config, ("PUT",)),
    _route("/api/orders", orders),
    _route("/api/polymarket", polymarket),
    _route("/api/backtests", backtests),
    _route("/api/backtests/{run_id:int}", backtest),
]
