"""What the backtest endpoints answer (SQL in ``storage/backtest_reads.py``; the metrics'
keys are described in docs/backtests.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streaming.web.models.common import Day, Row, Timestamp


class RunSummary(Row):
    run_id: int
    strategy_name: str
    status: str
    source: str
    partition_key: str | None
    first_day: Day
    last_day: Day
    symbols: list[str]
    started_at: Timestamp
    finished_at: Timestamp | None
    symbol_minutes: int | None
    signals: int | None
    trades: int | None
    total_pnl: float | None
    win_rate: float | None
    profit_factor: float | None
    max_drawdown_pct: float | None
    sharpe: float | None
    error: str | None


class Runs(BaseModel):
    runs: list[RunSummary]


class Trade(Row):
    trade_no: int
    symbol: str
    side: str
    qty: float  # whole shares for equities, fractional for crypto pairs
    signal_ts: Timestamp
    entry_ts: Timestamp
    entry_price: float
    stop: float
    target: float
    exit_ts: Timestamp
    exit_price: float
    exit_reason: str
    pnl: float
    commission: float
    mae: float
    mfe: float
    bars_held: int
    market_state: str | None
    aggression_score: float | None
    va_position: str | None


class DailyStat(Row):
    day: Day
    start_equity: float
    end_equity: float
    pnl: float
    return_pct: float
    trades: int
    wins: int


class EquityPoint(Row):
    ts: Timestamp
    equity: float
    drawdown: float  # money below the running peak
    open_positions: int


class Run(Row):
    run_id: int
    strategy_name: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    status: str
    source: str
    partition_key: str | None
    first_day: Day
    last_day: Day
    symbols: list[str]
    started_at: Timestamp
    finished_at: Timestamp | None
    symbol_minutes: int | None
    signals: int | None
    trades: int | None
    metrics: dict[str, Any] | None
    by_symbol: dict[str, dict[str, Any]] | None
    timings: dict[str, Any] | None
    error: str | None
    trades_list: list[Trade]
    daily: list[DailyStat]
    equity: list[EquityPoint]
