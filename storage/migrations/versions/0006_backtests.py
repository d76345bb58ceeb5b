"""Backtest results: runs, trades, the equity curve per minute and daily stats.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

One ``backtest_runs`` row per backtest (strategy, parameters, period, symbols, status,
timings and the run's metrics as JSON, docs/backtests.md); its trades, equity minutes and
days hang off it and go with it (``on delete cascade``). A run is written in one
transaction, so readers never see half of one. ``backtest_runs.partition_key`` names the
Dagster partition (or partition range) that wrote a run, so a re-materialisation replaces
its own rows.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
create table backtest_runs (
    id bigserial primary key,
    strategy_id bigint references strategies (id) on delete set null,
    strategy_name text not null,
    definition jsonb not null,
    parameters jsonb not null default '{}'::jsonb,
    symbols text[] not null default '{}',
    first_day date not null,
    last_day date not null,
    status text not null default 'running'
        check (status in ('running', 'succeeded', 'failed')),
    source text not null default 'cli',
    partition_key text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    symbol_minutes bigint,
    signals integer,
    trades integer,
    metrics jsonb,
    by_symbol jsonb,
    timings jsonb,
    error text,
    check (last_day >= first_day)
);
create index backtest_runs_strategy_idx on backtest_runs (strategy_name, started_at desc);
create index backtest_runs_partition_idx on backtest_runs (partition_key)
    where partition_key is not null;

create table backtest_trades (
    run_id bigint not null references backtest_runs (id) on delete cascade,
    trade_no integer not null,
    symbol_id bigint not null references symbols (id),
    symbol text not null,
    side text not null check (side in ('buy', 'sell')),
    qty integer not null check (qty > 0),
    signal_ts timestamptz not null,
    signal_price double precision not null,
    entry_ts timestamptz not null,
    entry_price double precision not null,
    stop double precision not null,
    target double precision not null,
    exit_ts timestamptz not null,
    exit_price double precision not null,
    exit_reason text not null
        check (exit_reason in ('stop', 'target', 'session_close', 'end_of_data')),
    gross_pnl double precision not null,
    commission double precision not null,
    pnl double precision not null,
    mae double precision not null,
    mfe double precision not null,
    bars_held integer not null,
    market_state text,
    aggression_score double precision,
    va_position text,
    details jsonb,
    primary key (run_id, trade_no)
);
create index backtest_trades_symbol_idx on backtest_trades (symbol_id, entry_ts);

create table backtest_equity (
    run_id bigint not null references backtest_runs (id) on delete cascade,
    ts timestamptz not null,
    equity double precision not null,
    drawdown double precision not null,
    open_positions integer not null,
    primary key (run_id, ts)
);

create table backtest_daily (
    run_id bigint not null references backtest_runs (id) on delete cascade,
    day date not null,
    start_equity double precision not null,
    end_equity double precision not null,
    pnl double precision not null,
    return_pct double precision not null,
    trades integer not null,
    wins integer not null,
    primary key (run_id, day)
);
"""

DOWNGRADE = """
drop table if exists backtest_daily;
drop table if exists backtest_equity;
drop table if exists backtest_trades;
drop table if exists backtest_runs;
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
