"""Backtests as Dagster assets: one strategy over the days of a partition (or a range).

``backtest_assets(partitions_def)`` builds the multi-asset for the shared daily partitions
(the definitions pass them in, so this layer does not import the orchestration layer).
It writes the four result tables of one backtest run (docs/backtests.md): a backfill over
any range is one run (``BackfillPolicy.single_run``) and so one backtest over the whole
range, with the strategy and its parameters as run config. A re-materialisation of the
same partition(s) and strategy replaces the run it wrote before. Downstream of the
candles and of the profile assets (profile metrics and order flow), upstream of the dbt
backtest marts.
"""

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from assets.resources import PostgresResource
from backtest.fills import Costs
from backtest.portfolio import Account
from backtest.run import Request, run_backtest
from backtest.store import delete_runs, save_result, start_run
from core.contracts import Table

UPSTREAM = [
    dg.AssetKey(Table.CANDLES_1M.value),
    dg.AssetKey(Table.PROFILE_METRICS.value),
    dg.AssetKey(Table.ORDER_FLOW.value),
]
TABLES = {
    "backtest_runs": "One row per backtest: strategy, parameters, period, symbols, status, "
    "timings and metrics (overall and per symbol).",
    "backtest_trades": "Every simulated trade: entry/exit time, price and reason, side, "
    "quantity, P&L after costs, MAE/MFE, bars held, the context at entry.",
    "backtest_equity": "Equity per minute (capital + realised + open P&L), drawdown, "
    "open positions.",
    "backtest_daily": "Per UTC day: start/end equity, P&L, return, trades and wins.",
}


class BacktestConfig(dg.Config):
    """Run config of a backtest materialisation (the CLI's options)."""

    strategy: str = Field(description="strategies.name")
    symbols: list[str] | None = Field(default=None, description="default: the strategy's")
    capital: float = 100_000.0
    risk_pct: float | None = Field(default=None, description="default: the strategy's")
    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    max_positions: int | None = Field(default=None, description="default: MAX_POSITIONS")
    exit_at_session_close: bool = False
    shorting: bool = True
    ticks: bool = Field(default=True, description="stored prints fill entries, decide candles")
    workers: int = Field(default=1, ge=1, description="processes for the signal pass")


def request_of(config: BacktestConfig, first_day: date, last_day: date) -> Request:
    from core.settings import get_settings

    s = get_settings()
    account = Account.from_settings(
        s,
        capital=config.capital,
        risk_pct=config.risk_pct,
        costs=Costs(config.slippage_bps, config.commission_per_share, config.commission_per_order),
        max_positions=config.max_positions,
        shorting=config.shorting,
        exit_at_session_close=config.exit_at_session_close,
    )
    return Request(
        strategy=config.strategy,
        first_day=first_day,
        last_day=last_day,
        symbols=tuple(config.symbols) if config.symbols else None,
        account=account,
        min_aggression_score=s.min_aggression_score,
        ticks=config.ticks,
    )


def backtest_assets(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="backtest",
        specs=[
            dg.AssetSpec(
                dg.AssetKey(name),
                deps=UPSTREAM,
                group_name="backtests",
                kinds={"postgres"},
                description=text,
            )
            for name, text in TABLES.items()
        ],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def backtest(
        context: dg.AssetExecutionContext, config: BacktestConfig, postgres: PostgresResource
    ):
        window = context.partition_time_window
        first = window.start.date()
        last = (window.end - timedelta(microseconds=1)).date()
        keys = context.partition_key_range
        label = keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
        request = request_of(config, first, last)
        with postgres.connect() as conn:
            replaced = delete_runs(conn, config.strategy, label)
            run_id = start_run(conn, request, source="dagster", partition_key=label)
            result = run_backtest(conn, request, workers=config.workers)
            save_result(conn, run_id, result)
        m = result.metrics
        context.log.info(
            "backtest %s %s: %d signals, %d trades, P&L %.2f (run %d)",
            config.strategy,
            label,
            len(result.signals),
            m["trades"],
            m["total_pnl"],
            run_id,
        )
        meta = {
            "run_id": run_id,
            "strategy": config.strategy,
            "partitions": label,
            "runs_replaced": replaced,
            "symbol_minutes": result.symbol_minutes,
            "signals": len(result.signals),
            "trades": m["trades"],
            "total_pnl": m["total_pnl"],
            "win_rate": m["win_rate"],
            "max_drawdown_pct": m["max_drawdown_pct"],
            "blocked": dg.MetadataValue.json(m["blocked"]),
        }
        rows = {
            "backtest_runs": 1,
            "backtest_trades": len(result.trades),
            "backtest_equity": len(result.curve.ts),
            "backtest_daily": len(result.daily.day),
        }
        for name, count in rows.items():
            yield dg.MaterializeResult(asset_key=name, metadata={**meta, "rows": count})

    return backtest
