"""The tick archive's record: one row per UTC day whose ticks moved to Parquet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

The day's file and its ``manifest.json`` live under the archive directory
(docs/retention.md); this row is written in the transaction that drops the day's ``ticks``
partition, so the database always knows which days it no longer holds. Readers take the
manifest on disk as the sign that a day is archived (a reader's snapshot may predate the
drop) and use this table to notice an archive directory that lost a day.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
create table tick_archive (
    day date primary key,
    file text not null,
    rows bigint not null check (rows >= 0),
    symbols integer not null check (symbols >= 0),
    min_seq bigint,
    max_seq bigint,
    sha256 text not null,
    content_sha256 text not null,
    archived_at timestamptz not null default now()
);
"""

DOWNGRADE = "drop table if exists tick_archive;"


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
