"""Initial schema: every raw table (docs/architecture.md).

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Raw SQL on purpose: partitioning, partial indexes and the partition function read more
plainly in SQL than through the Alembic operations API. Columns beyond the contract:
``candles_1m.first_ts/last_ts`` (time of the first and last print a candle holds, so a merge
keeps the earliest open and the latest close), ``candles_1m.source``.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SYMBOLS = """
create table symbols (
    id bigserial primary key,
    symbol text not null unique,
    name text,
    exchange text,
    asset_type text not null default 'stock'
        check (asset_type in ('stock', 'binary_option', 'crypto', 'forex', 'index')),
    provider text,
    market text not null default 'XNYS',
    timezone text not null default 'America/New_York',
    row_size double precision not null default 0.01 check (row_size > 0),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index symbols_asset_type_idx on symbols (asset_type);

create table symbol_providers (
    symbol text primary key,
    provider text not null,
    market text,
    epic text,
    active boolean not null default true,
    updated_at timestamptz not null default now()
);
"""

TICKS = """
create sequence ticks_seq as bigint;

create table ticks (
    symbol_id bigint not null references symbols (id),
    ts timestamptz not null,
    trade_id text not null,
    price double precision not null,
    size double precision not null,
    exchange text,
    conditions text[],
    side smallint check (side in (-1, 1)),
    bid double precision,
    ask double precision,
    seq bigint not null default nextval('ticks_seq'),
    received_at timestamptz default now(),
    primary key (symbol_id, ts, trade_id)
) partition by range (ts);
alter sequence ticks_seq owned by ticks.seq;
-- the Dagster sensor's cursor: "rows with seq > cursor"; local to each day partition
create index ticks_seq_idx on ticks (seq);

-- Creates the missing daily partitions ticks_YYYYMMDD for [from_day, to_day] (UTC days);
-- idempotent and safe under concurrent writers (an advisory lock serialises creators).
-- Returns how many partitions it created.
create function ensure_tick_partitions(from_day date, to_day date) returns integer
language plpgsql as $$
declare
    day date := from_day;
    part text;
    created integer := 0;
begin
    if from_day is null or to_day is null or to_day < from_day then
        return 0;
    end if;
    perform pg_advisory_xact_lock(hashtext('marketflow.ensure_tick_partitions'));
    while day <= to_day loop
        part := 'ticks_' || to_char(day, 'YYYYMMDD');
        if to_regclass(quote_ident(current_schema()) || '.' || part) is null then
            execute format(
                'create table %I partition of ticks for values from (%L) to (%L)',
                part,
                (day::timestamp at time zone 'UTC'),
                ((day + 1)::timestamp at time zone 'UTC'));
            created := created + 1;
        end if;
        day := day + 1;
    end loop;
    return created;
end;
$$;

select ensure_tick_partitions(
    (now() at time zone 'UTC')::date - 2, (now() at time zone 'UTC')::date + 7);
"""

ANALYTICS = """
create table candles_1m (
    symbol_id bigint not null references symbols (id),
    ts timestamptz not null,
    open double precision not null,
    high double precision not null,
    low double precision not null,
    close double precision not null,
    volume double precision not null default 0,
    trade_count integer not null default 0,
    vwap double precision,
    first_ts timestamptz,
    last_ts timestamptz,
    source text,
    updated_at timestamptz not null default now(),
    primary key (symbol_id, ts)
);
create index candles_1m_ts_idx on candles_1m (ts);

create table volume_profile (
    symbol_id bigint not null references symbols (id),
    bucket timestamptz not null,
    price_level numeric(20, 8) not null,
    total_volume double precision not null default 0,
    buy_volume double precision not null default 0,
    sell_volume double precision not null default 0,
    trade_count integer not null default 0,
    primary key (symbol_id, bucket, price_level)
);

create table profile_metrics (
    symbol_id bigint not null references symbols (id),
    horizon text not null check (horizon in ('1m', 'session', 'composite')),
    bucket timestamptz not null,
    session_date date,
    poc double precision,
    vah double precision,
    val double precision,
    total_volume double precision,
    lvns jsonb,
    hvns jsonb,
    value_area_method text not null default 'single',
    updated_at timestamptz not null default now(),
    primary key (symbol_id, horizon, bucket)
);
create index profile_metrics_session_idx on profile_metrics (symbol_id, horizon, session_date);

create table naked_pocs (
    symbol_id bigint not null references symbols (id),
    session_date date not null,
    poc double precision not null,
    touched_at timestamptz,
    primary key (symbol_id, session_date)
);

create table order_flow (
    symbol_id bigint not null references symbols (id),
    bucket timestamptz not null,
    delta double precision,
    cvd double precision,
    cvd_total double precision,
    buy_volume double precision,
    sell_volume double precision,
    buy_pressure double precision,
    sell_pressure double precision,
    trade_count integer,
    primary key (symbol_id, bucket)
);

create table market_state (
    symbol_id bigint not null references symbols (id),
    ts timestamptz not null,
    state text not null,
    balance_high double precision,
    balance_low double precision,
    poc double precision,
    confidence double precision,
    details jsonb,
    primary key (symbol_id, ts)
);
"""

TRADING = """
create table strategies (
    id bigserial primary key,
    name text not null unique,
    definition jsonb not null,
    active boolean not null default true,
    cooldown_seconds integer not null default 300,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table strategy_configs (
    id bigserial primary key,
    symbol_id bigint not null references symbols (id) on delete cascade,
    strategy_name text not null,
    enabled boolean not null default true,
    parameters jsonb not null default '{}'::jsonb,
    risk_per_trade_pct double precision,
    max_positions integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (symbol_id, strategy_name)
);

create table signals (
    ts timestamptz not null default now(),
    strategy_id bigint not null references strategies (id),
    symbol_id bigint not null references symbols (id),
    type text not null,
    price double precision,
    details jsonb,
    primary key (ts, strategy_id, symbol_id)
);
create index signals_symbol_ts_idx on signals (symbol_id, ts desc);

create table orders (
    id bigserial primary key,
    client_order_id text not null unique,
    broker_order_id text,
    symbol_id bigint references symbols (id),
    strategy_id bigint references strategies (id),
    side text,
    qty double precision,
    order_type text,
    entry double precision,
    stop double precision,
    target double precision,
    status text not null default 'new' check (status in (
        'new', 'submitted', 'accepted', 'filled', 'partially_filled', 'canceled',
        'rejected', 'expired', 'blocked')),
    reason text,
    error text,
    paper boolean not null default true,
    raw jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    submitted_at timestamptz,
    filled_at timestamptz,
    filled_avg_price double precision,
    filled_qty double precision
);
create index orders_symbol_created_idx on orders (symbol_id, created_at desc);
create index orders_status_idx on orders (status);
create index orders_broker_idx on orders (broker_order_id);
"""

BINARY = """
create table binary_markets (
    id bigserial primary key,
    symbol_id bigint references symbols (id) on delete cascade,
    market_id text unique,
    event_id text,
    event_slug text,
    neg_risk boolean not null default false,
    augmented boolean not null default false,
    slug text,
    yes_token_id text,
    no_token_id text,
    question text not null,
    category text,
    end_date timestamptz,
    status text not null default 'active'
        check (status in ('active', 'closed', 'resolved', 'cancelled')),
    resolution text,
    fee_rate double precision,
    tick_size double precision,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index binary_markets_yes_token_idx on binary_markets (yes_token_id);
create index binary_markets_no_token_idx on binary_markets (no_token_id);
create index binary_markets_event_idx on binary_markets (event_id);
create index binary_markets_symbol_idx on binary_markets (symbol_id);
create index binary_markets_active_idx on binary_markets (status, end_date);

create table binary_prices (
    ts timestamptz not null,
    market_id text not null,
    symbol_id bigint references symbols (id) on delete cascade,
    yes_bid double precision,
    yes_ask double precision,
    yes_mid double precision,
    no_bid double precision,
    no_ask double precision,
    no_mid double precision,
    spread double precision,
    edge double precision,
    executable_size double precision,
    yes_last double precision,
    no_last double precision,
    arbitrage boolean not null default false,
    stale boolean not null default false,
    primary key (market_id, ts)
);
create index binary_prices_arb_idx on binary_prices (ts desc) where arbitrage;
create index binary_prices_symbol_ts_idx on binary_prices (symbol_id, ts desc);

create table binary_opportunities (
    id bigserial primary key,
    market_id text,
    event_id text,
    kind text not null check (kind in ('pair', 'neg_risk')),
    opened_at timestamptz not null default now(),
    closed_at timestamptz,
    best_edge double precision,
    size double precision,
    details jsonb
);
create index binary_opportunities_market_idx on binary_opportunities (market_id, opened_at desc);
create index binary_opportunities_event_idx on binary_opportunities (event_id, opened_at desc);
create index binary_opportunities_open_idx on binary_opportunities (opened_at)
    where closed_at is null;

create table binary_positions (
    id bigserial primary key,
    symbol_id bigint references symbols (id) on delete cascade,
    market_id text,
    opportunity_id bigint references binary_opportunities (id),
    yes_qty double precision,
    no_qty double precision,
    yes_entry_price double precision,
    no_entry_price double precision,
    entry_cost double precision,
    fees_paid double precision,
    status text not null default 'open' check (status in ('open', 'closed', 'resolved')),
    mark_value double precision,
    profit_loss double precision,
    resolution text,
    opened_at timestamptz not null default now(),
    closed_at timestamptz,
    resolved_at timestamptz,
    paper boolean not null default true,
    notes text
);
create index binary_positions_market_idx on binary_positions (market_id);
create index binary_positions_status_idx on binary_positions (status, opened_at);
"""

REJECTS = """
create table ingest_rejects (
    day date not null,
    source text not null,
    reason text not null,
    count bigint not null default 0,
    sample text,
    last_seen timestamptz not null default now(),
    primary key (day, source, reason)
);
"""

DROP = """
drop table if exists ingest_rejects;
drop table if exists binary_positions;
drop table if exists binary_opportunities;
drop table if exists binary_prices;
drop table if exists binary_markets;
drop table if exists orders;
drop table if exists signals;
drop table if exists strategy_configs;
drop table if exists strategies;
drop table if exists market_state;
drop table if exists order_flow;
drop table if exists naked_pocs;
drop table if exists profile_metrics;
drop table if exists volume_profile;
drop table if exists candles_1m;
drop function if exists ensure_tick_partitions(date, date);
drop table if exists ticks cascade;
drop sequence if exists ticks_seq;
drop table if exists symbol_providers;
drop table if exists symbols;
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters: the text reaches the server as
    # written (no placeholder parsing of format('%I') or '::'), several statements at once,
    # inside Alembic's transaction
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    for block in (SYMBOLS, TICKS, ANALYTICS, TRADING, BINARY, REJECTS):
        _run(block)


def downgrade() -> None:
    _run(DROP)
