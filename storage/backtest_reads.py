"""Read-only JSON views of stored backtests for the dashboard (docs/backtests.md).

The dashboard's database helper (anything with ``async fetch(query, params) -> list of
JSON-ready dicts``) runs these: the list of runs with their headline metrics, and one run
with its metrics, trades, daily stats and an equity curve thinned to at most ``points``
minutes (every k-th minute plus the last, so a year stays a few thousand points) with its
drawdown, ready for a lightweight-charts line series.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

RUNS_SQL = """
select id as run_id, strategy_name, status, source, partition_key, first_day, last_day,
       symbols, started_at, finished_at, symbol_minutes, signals, trades,
       (metrics ->> 'total_pnl')::float8 as total_pnl,
       (metrics ->> 'win_rate')::float8 as win_rate,
       (metrics ->> 'profit_factor')::float8 as profit_factor,
       (metrics ->> 'max_drawdown_pct')::float8 as max_drawdown_pct,
       (metrics ->> 'sharpe')::float8 as sharpe,
       error
from backtest_runs
where (%(strategy)s::text is null or strategy_name = %(strategy)s)
order by started_at desc, id desc
limit %(limit)s
"""
RUN_SQL = """
select id as run_id, strategy_name, definition, parameters, status, source, partition_key,
       first_day, last_day, symbols, started_at, finished_at, symbol_minutes, signals, trades,
       metrics, by_symbol, timings, error
from backtest_runs where id = %(run_id)s
"""
TRADES_SQL = """
select trade_no, symbol, side, qty, signal_ts, entry_ts, entry_price, stop, target, exit_ts,
       exit_price, exit_reason, pnl, commission, mae, mfe, bars_held, market_state,
       aggression_score, va_position
from backtest_trades where run_id = %(run_id)s order by trade_no
limit %(limit)s
"""
EQUITY_SQL = """
with numbered as (
    select ts, equity, drawdown, open_positions,
           row_number() over (order by ts) as n, count(*) over () as total
    from backtest_equity where run_id = %(run_id)s
)
select ts, equity, drawdown, open_positions from numbered
where n %% greatest(ceil(total::float8 / %(points)s)::bigint, 1) = 0 or n = 1 or n = total
order by ts
"""
DAILY_SQL = """
select day, start_equity, end_equity, pnl, return_pct, trades, wins
from backtest_daily where run_id = %(run_id)s order by day
"""
MAX_RUNS = 500
MAX_TRADES = 10_000
MAX_POINTS = 20_000


class Fetcher(Protocol):
    async def fetch(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


async def backtest_runs(
    db: Fetcher, limit: int = 50, strategy: str | None = None
) -> list[dict[str, Any]]:
    """The newest runs first, with their headline metrics."""
    return await db.fetch(
        RUNS_SQL, {"limit": max(1, min(int(limit), MAX_RUNS)), "strategy": strategy}
    )


async def backtest_run(
    db: Fetcher, run_id: int, points: int = 2000, trades: int = 2000
) -> dict[str, Any] | None:
    """One run: its row, trades (first ``trades``), daily stats and the thinned curve."""
    rows = await db.fetch(RUN_SQL, {"run_id": int(run_id)})
    if not rows:
        return None
    ids = {"run_id": int(run_id)}
    return {
        **rows[0],
        "trades_list": await db.fetch(
            TRADES_SQL, {**ids, "limit": max(1, min(int(trades), MAX_TRADES))}
        ),
        "daily": await db.fetch(DAILY_SQL, ids),
        "equity": await db.fetch(
            EQUITY_SQL, {**ids, "points": max(2, min(int(points), MAX_POINTS))}
        ),
    }
