"""ensure_tick_partitions: create + ATTACH, so a new day never blocks readers of ticks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

``CREATE TABLE ... PARTITION OF`` takes an ACCESS EXCLUSIVE lock on ``ticks``: at a day
change the writer's partition creation waited for every running reader (a Dagster asset
reading a day of ticks) and every new reader queued behind it. ``ATTACH PARTITION`` takes
only SHARE UPDATE EXCLUSIVE on the parent, which readers and inserts do not conflict with
(measured: with a reader holding its lock, the old function hit a 1 s lock timeout, attach
went through). The new table is empty, so attaching scans nothing; the parent's indexes
are created on it by the attach.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BODY = """
create or replace function ensure_tick_partitions(from_day date, to_day date)
returns integer language plpgsql as $$
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
            %s
            created := created + 1;
        end if;
        day := day + 1;
    end loop;
    return created;
end;
$$;
"""

ATTACH = """
            execute format(
                'create table %I (like ticks including defaults including constraints)', part);
            execute format(
                'alter table ticks attach partition %I for values from (%L) to (%L)',
                part,
                (day::timestamp at time zone 'UTC'),
                ((day + 1)::timestamp at time zone 'UTC'));"""

PARTITION_OF = """
            execute format(
                'create table %I partition of ticks for values from (%L) to (%L)',
                part,
                (day::timestamp at time zone 'UTC'),
                ((day + 1)::timestamp at time zone 'UTC'));"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(BODY.replace("%s", ATTACH.strip(), 1))


def downgrade() -> None:
    _run(BODY.replace("%s", PARTITION_OF.strip(), 1))
