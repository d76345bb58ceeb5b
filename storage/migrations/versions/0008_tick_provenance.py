"""Provenance of ticks (source, feed), the one equity feed of a symbol, history progress.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

``ticks.source`` says how a print arrived (``stream``, ``gap_fill``, ``backfill``,
``replay``) and ``ticks.feed`` from which tape (Alpaca's ``iex``/``sip``/…, ``crypto_us``,
``demo``, ``ig``; NULL when unknown). Rows stored before this migration cannot be told
apart (a stream and its gap fill wrote the same way, a replay too), so they get
``unknown``; the default stays ``unknown`` for rows written by hand, while every writer of
ours names its source. Adding a column with a constant default is a catalogue change in
PostgreSQL (no rewrite of the partitions); the CHECK reads each partition once.

``symbols.equity_feed`` is the Alpaca equity feed a symbol's ticks come from, fixed by the
first Alpaca stream or backfill that serves it: a profile never mixes IEX with SIP
(docs/history.md).

``tick_history_progress`` is how far the history backfill got, per symbol and UTC day: the
time of the newest print it stored in order (a re-run asks from there; the exact keys of
``ticks`` drop what it fetches twice) and whether the venue's day was read to its end
after the day was over (a re-run then asks nothing).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
alter table ticks
    add column source text not null default 'unknown'
        constraint ticks_source_check
        check (source in ('stream', 'gap_fill', 'backfill', 'replay', 'unknown')),
    add column feed text constraint ticks_feed_check check (length(feed) between 1 and 32);
alter table symbols add column equity_feed text;

create table tick_history_progress (
    symbol_id bigint not null references symbols (id) on delete cascade,
    day date not null,
    feed text not null,
    resume_from timestamptz not null,
    complete boolean not null default false,
    trades_fetched bigint not null default 0 check (trades_fetched >= 0),
    updated_at timestamptz not null default now(),
    primary key (symbol_id, day)
);
"""

DOWNGRADE = """
drop table if exists tick_history_progress;
alter table symbols drop column if exists equity_feed;
alter table ticks drop column if exists feed, drop column if exists source;
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
