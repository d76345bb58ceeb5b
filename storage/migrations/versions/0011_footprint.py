"""Footprint: imbalances, session VWAP, big prints, bar statistics, auction levels, and the
per-symbol parameters they use (docs/semantics.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

``footprint_config`` holds a symbol's parameters; a symbol without a row, or a null
column, uses the defaults of ``analytics/footprint_config.py`` (their one home). The
check constraints refuse what that class refuses, with a name that says the rule.
``order_flow.trades`` is the print count under the name the footprint readers use: a
generated column, so it can never disagree with ``trade_count``.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
create table footprint_config (
    symbol_id bigint primary key references symbols (id) on delete cascade,
    imbalance_ratio double precision
        constraint imbalance_ratio_must_be_positive check (imbalance_ratio > 0),
    imbalance_min_volume double precision
        constraint imbalance_min_volume_must_not_be_negative check (imbalance_min_volume >= 0),
    big_print_sd double precision
        constraint big_print_sd_must_be_positive check (big_print_sd > 0),
    big_print_minutes integer
        constraint big_print_minutes_must_be_at_least_1 check (big_print_minutes >= 1),
    node_count integer
        constraint node_count_must_be_at_least_1 check (node_count >= 1),
    node_prominence double precision
        constraint node_prominence_must_be_in_0_1 check (node_prominence > 0
            and node_prominence <= 1),
    node_separation double precision
        constraint node_separation_must_be_in_0_1 check (node_separation >= 0
            and node_separation < 1),
    -- NaN passes a comparison with infinity in PostgreSQL: refuse it (and infinities) outright
    constraint footprint_config_values_must_be_finite check (
        coalesce(imbalance_ratio, 1) < 'infinity'::float8
        and coalesce(imbalance_min_volume, 0) < 'infinity'::float8
        and coalesce(big_print_sd, 1) < 'infinity'::float8
        and coalesce(node_prominence, 0.5) < 'infinity'::float8
        and coalesce(node_separation, 0) < 'infinity'::float8
    ),
    updated_at timestamptz not null default now()
);

create table footprint_imbalances (
    symbol_id bigint not null references symbols (id),
    bucket timestamptz not null,
    price numeric(20, 8) not null,
    side text not null check (side in ('buy', 'sell')),
    volume double precision not null,
    opposite double precision not null,
    stack_len integer not null check (stack_len >= 1),
    primary key (symbol_id, bucket, price, side)
);

create table session_vwap (
    symbol_id bigint not null references symbols (id),
    bucket timestamptz not null,
    session_date date not null,
    vwap double precision not null,
    sd double precision not null check (sd >= 0),
    volume double precision not null check (volume > 0),
    primary key (symbol_id, bucket)
);

create table big_prints (
    symbol_id bigint not null references symbols (id),
    bucket timestamptz not null,
    print_no integer not null check (print_no >= 0),
    ts timestamptz not null,
    price double precision not null,
    size double precision not null,
    side text check (side in ('buy', 'sell')),
    threshold double precision not null,
    primary key (symbol_id, bucket, print_no)
);

alter table order_flow
    add column max_delta double precision,
    add column min_delta double precision,
    add column mean_trade_size double precision,
    add column trade_size_sd double precision,
    add column trades integer generated always as (trade_count) stored;

alter table profile_metrics
    add column unfinished_high boolean,
    add column unfinished_low boolean,
    add column ib_high double precision,
    add column ib_low double precision,
    add column ib_extension_up double precision,
    add column ib_extension_down double precision;
"""

DOWNGRADE = """
alter table profile_metrics
    drop column if exists unfinished_high,
    drop column if exists unfinished_low,
    drop column if exists ib_high,
    drop column if exists ib_low,
    drop column if exists ib_extension_up,
    drop column if exists ib_extension_down;
alter table order_flow
    drop column if exists trades,
    drop column if exists max_delta,
    drop column if exists min_delta,
    drop column if exists mean_trade_size,
    drop column if exists trade_size_sd;
drop table if exists big_prints;
drop table if exists session_vwap;
drop table if exists footprint_imbalances;
drop table if exists footprint_config;
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
