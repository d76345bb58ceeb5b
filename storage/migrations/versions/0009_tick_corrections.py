"""Venue corrections and cancels of stored prints: the append-only ``tick_corrections``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

One row per correction or cancel a venue sent (docs/corrections.md), written in the
transaction that changes ``ticks``, with what the stored print was before (so nothing
stored is ever lost: the tape before any amendment can be rebuilt from ``ticks`` and this
table). ``seq`` draws from ``ticks_seq``, so the tick sensor's one cursor sees an amended
print like a new one and the profile run recomputes its minute. The unique key (symbol,
amended print, corrected print) makes a repeated message a no-op: a correction is never
applied twice. Rows are never updated or deleted (a trigger refuses both).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
create table tick_corrections (
    id bigserial primary key,
    seq bigint not null default nextval('ticks_seq'),
    received_at timestamptz not null default now(),
    source text not null,
    symbol_id bigint not null references symbols (id),
    kind text not null check (kind in ('correction', 'cancel', 'error')),
    venue_ts timestamptz not null,
    exchange text,
    tape text,
    trade_id text not null,
    price double precision,
    size double precision,
    conditions text[],
    corrected_trade_id text,
    corrected_price double precision,
    corrected_size double precision,
    corrected_conditions text[],
    outcome text not null check (outcome in ('applied', 'unmatched')),
    tick_ts timestamptz,
    tick_seq bigint,
    tick_price double precision,
    tick_size double precision,
    tick_conditions text[],
    tick_side smallint,
    tick_bid double precision,
    tick_ask double precision,
    tick_source text,
    tick_feed text,
    check ((kind = 'correction') = (corrected_trade_id is not null)),
    check ((outcome = 'applied') = (tick_ts is not null))
);
create unique index tick_corrections_once_idx
    on tick_corrections (symbol_id, trade_id, corrected_trade_id) nulls not distinct;
create index tick_corrections_seq_idx on tick_corrections (seq);
create index tick_corrections_applied_idx on tick_corrections (symbol_id, tick_ts)
    where outcome = 'applied';

create function tick_corrections_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'tick_corrections is append-only (% refused)', tg_op;
end;
$$;
create trigger tick_corrections_append_only before update or delete on tick_corrections
    for each row execute function tick_corrections_append_only();
create trigger tick_corrections_no_truncate before truncate on tick_corrections
    for each statement execute function tick_corrections_append_only();
"""

DOWNGRADE = """
drop table if exists tick_corrections;
drop function if exists tick_corrections_append_only();
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
