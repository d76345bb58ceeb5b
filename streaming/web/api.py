"""The JSON API under ``/api``: what a page needs when it opens; live updates then come over
``/ws``. Parameters, bodies and answers are typed (``models/``), so ``/openapi.json`` is
generated from this module: each endpoint's summary, its docstring, its parameters with their
bounds, and every answer it can give (docs/dashboard.md, "JSON API")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Path, Query, Request

from storage.backtest_reads import MAX_POINTS, MAX_RUNS, MAX_TRADES
from streaming.web.models.backtests import Run, Runs
from streaming.web.models.common import NameText, Responses, SymbolText, error
from streaming.web.models.footprint import Footprint, Vwap
from streaming.web.models.market import (
    Candles,
    Flow,
    Health,
    Profile,
    Signals,
    States,
    Symbols,
    Timeframe,
    Timeframes,
    Watchlist,
)
from streaming.web.models.strategy_changes import ConfigChange, StrategyChange
from streaming.web.models.trading import (
    Orders,
    Polymarket,
    StoredStrategy,
    Strategies,
    StrategyConfigRow,
)
from streaming.web.queries import TIMEFRAMES, Queries
from streaming.web.queries.footprint import MAX_FOOTPRINT_BARS
from streaming.web.queries.market import MAX_BARS

if set(get_args(Timeframe)) != set(TIMEFRAMES):
    raise AssertionError("models.market.Timeframe must list queries.market.TIMEFRAMES")

ID_MAX = 2**63 - 1  # bigint ids
UNAVAILABLE: Responses = {503: error("the database is unavailable (the live feed goes on)")}
UNKNOWN_SYMBOL: Responses = {404: error("unknown symbol")}
WRITE: Responses = {
    404: error("no such strategy or symbol"),
    413: error("the body is larger than 64 KiB"),
    415: error("the body is not sent as application/json"),
    **UNAVAILABLE,
}

router = APIRouter(
    prefix="/api",
    responses={
        400: error("an invalid parameter or body, or a malformed header; the reason is given"),
        401: error("the token is missing or wrong (docs/dashboard.md, 'Access and security')"),
        403: error("a Host this server does not answer to, or a cross-origin write"),
    },
)

Symbol = Annotated[SymbolText, Query(description="a symbol, in any case")]
OneSymbol = Annotated[SymbolText | None, Query(description="only this symbol")]
Strategy = Annotated[NameText | None, Query(description="only this strategy (its name)")]
Tf = Annotated[Timeframe, Query(description="bar length; bars start in the market's time zone")]


def limit(default: int, most: int, what: str) -> Any:
    return Query(default, ge=1, le=most, description=f"at most this many {what}")


def queries(request: Request) -> Queries:
    found: Queries = request.app.state.queries
    return found


def upper(symbol: str) -> str:
    return symbol.strip().upper()


@router.get("/health", response_model=Health, summary="Liveness and the Redis subscription")
async def health(request: Request) -> dict[str, Any]:
    """Needs no token."""
    return {"ok": True, "redis": request.app.state.hub.subscribed.is_set()}


@router.get(
    "/symbols",
    response_model=Symbols,
    summary="Active symbols with time zone and latest market state",
    responses=UNAVAILABLE,
)
async def symbols(request: Request) -> dict[str, Any]:
    return {"symbols": await queries(request).symbols()}


@router.get(
    "/watchlist",
    response_model=Watchlist,
    response_model_exclude_unset=True,
    summary="One row per symbol: price, change, state, pressure, CVD, POC/VA, nearest LVN, "
    "last signal",
    responses=UNAVAILABLE,
)
async def watchlist(request: Request) -> dict[str, Any]:
    """From the watchlist_latest mart when it exists (then source says so), else the raw
    tables."""
    return await queries(request).watchlist()


@router.get("/timeframes", response_model=Timeframes, summary="The timeframes of /api/candles")
async def timeframes() -> dict[str, Any]:
    return {"timeframes": list(TIMEFRAMES)}


@router.get(
    "/candles",
    response_model=Candles,
    summary="Candles of a symbol, oldest first, aggregated in the market's time zone",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def candles(
    request: Request,
    symbol: Symbol,
    tf: Tf = "1m",
    limit: int = limit(390, MAX_BARS, "bars"),
) -> dict[str, Any]:
    return await queries(request).candles(upper(symbol), limit, tf)


@router.get(
    "/flow",
    response_model=Flow,
    summary="Delta per bar and CVD at each bar's end, same bars as /api/candles",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def flow(
    request: Request,
    symbol: Symbol,
    tf: Tf = "1m",
    limit: int = limit(390, MAX_BARS, "bars"),
) -> dict[str, Any]:
    return await queries(request).flow(upper(symbol), limit, tf)


@router.get(
    "/footprint",
    response_model=Footprint,
    summary="Footprint bars of a symbol: cells with imbalances and stacks, bar statistics",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def footprint(
    request: Request,
    symbol: Symbol,
    tf: Tf = "1m",
    start: Annotated[
        datetime | None,
        Query(alias="from", description="bars starting at or after this time (UTC if no zone)"),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="bars starting before this time (UTC if no zone)"),
    ] = None,
    limit: int = limit(120, MAX_FOOTPRINT_BARS, "bars, the newest of the window"),
) -> dict[str, Any]:
    """Per bar, oldest first: buy and sell volume per price row, each cell's diagonal
    imbalance flags and stack lengths, and delta, trades, max/min delta and volume. Bars
    are the candles' bars; a bar exists where a minute of it traded."""
    return await queries(request).footprint(upper(symbol), tf, start, end, limit)


@router.get(
    "/vwap",
    response_model=Vwap,
    summary="The session VWAP and its sd at each bar's end (bands at ±1, 2, 3 sd)",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def vwap(
    request: Request,
    symbol: Symbol,
    tf: Tf = "1m",
    limit: int = limit(390, MAX_FOOTPRINT_BARS * 4, "bars"),
    start: Annotated[
        datetime | None,
        Query(alias="from", description="bars starting at or after this time (UTC if no zone)"),
    ] = None,
) -> dict[str, Any]:
    """Oldest first. The page follows the market with ``from`` set to its last bar's start."""
    return await queries(request).vwap(upper(symbol), tf, limit, start)


@router.get(
    "/profile",
    response_model=Profile,
    summary="Latest session profile and the naked POCs of earlier sessions",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def profile(request: Request, symbol: Symbol) -> dict[str, Any]:
    """POC/VAH/VAL, LVNs/HVNs and the buy/sell volume per price level; "session" is null
    before the first profile run."""
    return await queries(request).profile(upper(symbol))


@router.get(
    "/signals",
    response_model=Signals,
    summary="Recent signals, newest first, optionally of one symbol or strategy",
    responses=UNAVAILABLE,
)
async def signals(
    request: Request,
    symbol: OneSymbol = None,
    strategy: Strategy = None,
    limit: int = limit(50, 500, "signals"),
) -> dict[str, Any]:
    chosen = upper(symbol) if symbol else None
    return {"signals": await queries(request).signals(limit, chosen, strategy)}


@router.get(
    "/states",
    response_model=States,
    summary="Recent market states of a symbol, newest first",
    responses={**UNKNOWN_SYMBOL, **UNAVAILABLE},
)
async def states(
    request: Request, symbol: Symbol, limit: int = limit(50, 500, "states")
) -> dict[str, Any]:
    return {"states": await queries(request).states(upper(symbol), limit)}


@router.get(
    "/strategies",
    response_model=Strategies,
    response_model_exclude_unset=True,
    summary="Strategies with signal counts, per-symbol configs and performance",
    responses=UNAVAILABLE,
)
async def strategies(request: Request) -> dict[str, Any]:
    """Performance from the strategy_performance mart where it exists."""
    return await queries(request).strategies()


StrategyId = Annotated[int, Path(ge=0, le=ID_MAX, description="the strategy's id")]


@router.patch(
    "/strategies/{id:int}",
    response_model=StoredStrategy,
    summary="Switch a strategy on/off or change its cooldown or definition",
    responses=WRITE,
)
async def update_strategy(request: Request, id: StrategyId, change: StrategyChange) -> Any:
    """Validated as the engine validates it, then stored; needs the token."""
    return await queries(request).update_strategy(id, change.model_dump(exclude_unset=True))


@router.put(
    "/strategies/{id:int}/configs/{symbol}",
    response_model=StrategyConfigRow,
    summary="Create or replace a strategy's config for one symbol",
    responses=WRITE,
)
async def put_config(
    request: Request,
    id: StrategyId,
    symbol: Annotated[SymbolText, Path(description="a known symbol, in any case")],
    config: ConfigChange,
) -> Any:
    """Validated as the engine validates it; needs the token."""
    body = config.model_dump(exclude_unset=True)
    return await queries(request).put_config(id, upper(symbol), body)


@router.get(
    "/orders",
    response_model=Orders,
    summary="Recent orders, net positions from fills, open Polymarket positions (read-only)",
    responses=UNAVAILABLE,
)
async def orders(request: Request, limit: int = limit(200, 1000, "orders")) -> dict[str, Any]:
    return await queries(request).orders(limit)


@router.get(
    "/polymarket",
    response_model=Polymarket,
    response_model_exclude_unset=True,
    summary="Active Polymarket markets with quotes, open opportunities, recent episodes",
    responses=UNAVAILABLE,
)
async def polymarket(request: Request, limit: int = limit(100, 500, "markets")) -> dict[str, Any]:
    return await queries(request).polymarket(limit)


@router.get(
    "/backtests",
    response_model=Runs,
    summary="Stored backtest runs, newest first, with their headline metrics (read-only)",
    responses=UNAVAILABLE,
)
async def backtests(
    request: Request, strategy: Strategy = None, limit: int = limit(50, MAX_RUNS, "runs")
) -> dict[str, Any]:
    return await queries(request).backtests(limit, strategy)


@router.get(
    "/backtests/{run_id:int}",
    response_model=Run,
    summary="One backtest run: metrics, per-symbol metrics, trades, days and equity curve",
    responses={404: error("no such run"), **UNAVAILABLE},
)
async def backtest(
    request: Request,
    run_id: Annotated[int, Path(ge=0, le=ID_MAX, description="the run's id")],
    points: int = Query(2000, ge=2, le=MAX_POINTS, description="equity points at most"),
    trades: int = limit(2000, MAX_TRADES, "trades"),
) -> dict[str, Any]:
    """The equity curve is thinned to at most "points" minutes, first and last kept; the
    trades are the first "trades" ones; "by_symbol" holds the metrics per symbol."""
    return await queries(request).backtest(run_id, points, trades)
