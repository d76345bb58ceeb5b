"""What the strategy, order and Polymarket endpoints answer (SQL in ``queries/trading.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streaming.web.models.common import OpenRow, Row, Timestamp


class StrategyConfigRow(Row):
    strategy_name: str
    symbol: str
    enabled: bool
    parameters: dict[str, Any]
    risk_per_trade_pct: float | None
    max_positions: int | None
    updated_at: Timestamp


class PerformanceRow(OpenRow):
    """A row of the ``strategy_performance`` mart (scope ``all_history``)."""

    strategy_id: int
    symbol: str | None = None
    signals: int | None = None
    hit_rate_60m: float | None = None
    mean_return_60m_pct: float | None = None
    take_profits: int | None = None
    stop_losses: int | None = None


class StoredStrategy(Row):
    id: int
    name: str
    definition: dict[str, Any]
    active: bool
    cooldown_seconds: int
    updated_at: Timestamp


class StrategyRow(StoredStrategy):
    signals_24h: int
    signals_total: int
    last_signal_at: Timestamp | None
    configs: list[StrategyConfigRow]
    performance: list[PerformanceRow]


class Strategies(BaseModel):
    performance_source: str | None  # "strategy_performance" when the mart exists
    strategies: list[StrategyRow]


class OrderRow(Row):
    id: int
    created_at: Timestamp
    symbol: str | None
    strategy: str | None
    side: str | None
    qty: float | None
    order_type: str | None
    entry: float | None
    stop: float | None
    target: float | None
    status: str
    reason: str | None
    error: str | None
    paper: bool
    filled_qty: float | None
    filled_avg_price: float | None
    filled_at: Timestamp | None


class Position(Row):
    symbol: str
    net_qty: float | None
    avg_buy_price: float | None
    last_fill_at: Timestamp | None
    last_price: float | None


class BinaryPosition(Row):
    id: int
    market_id: str | None
    question: str | None
    yes_qty: float | None
    no_qty: float | None
    entry_cost: float | None
    fees_paid: float | None
    mark_value: float | None
    profit_loss: float | None
    status: str
    opened_at: Timestamp
    paper: bool


class Orders(BaseModel):
    orders: list[OrderRow]
    positions: list[Position]
    binary_positions: list[BinaryPosition]


class BinaryMarket(Row):
    """An active market with its latest quote (the quote's fields are null before one)."""

    market_id: str | None
    question: str
    category: str | None
    end_date: Timestamp | None
    event_id: str | None
    ts: Timestamp | None
    yes_bid: float | None
    yes_ask: float | None
    yes_mid: float | None
    no_bid: float | None
    no_ask: float | None
    no_mid: float | None
    spread: float | None
    edge: float | None
    executable_size: float | None
    arbitrage: bool | None
    stale: bool | None


class Opportunity(Row):
    id: int
    kind: str
    market_id: str | None
    event_id: str | None
    question: str | None
    opened_at: Timestamp
    best_edge: float | None
    size: float | None


class Episode(OpenRow):
    """From the ``binary_arbitrage_episodes`` mart, else one closed opportunity each."""

    kind: str | None = None
    market_id: str | None = None
    event_id: str | None = None
    question: str | None = None
    opportunities: int | None = None
    started_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    duration_seconds: float | None = None
    best_edge: float | None = None
    size_at_best_edge: float | None = None


class Polymarket(BaseModel):
    markets: list[BinaryMarket]
    opportunities: list[Opportunity]
    episodes: list[Episode]
    episodes_source: str  # "binary_arbitrage_episodes" (the mart) or "raw"
