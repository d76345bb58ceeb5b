"""ticks → symbols integrity checked once per statement instead of once per row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Measured on the tick writer benchmark (400 k rows, 10 k-row batches): the row-level foreign
key ``ticks.symbol_id → symbols`` made binary COPY into ``ticks`` about 2.5× slower than the
same COPY into a plain table with the same key, because every row runs its own
``select ... for key share`` on ``symbols``. The same guarantee, per statement:

* an ``after insert`` statement trigger with a transition table locks (``for key share``,
  like the foreign key) the distinct symbol ids of the statement's rows and raises
  ``foreign_key_violation`` when one is missing, so the insert (or COPY) fails as before;
* ``after delete or update of id`` on ``symbols`` refuses to orphan ticks; it runs after the
  row lock is taken, so it sees ticks committed by a writer it waited for;
* ``before truncate`` on ``symbols`` refuses while ticks exist.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
alter table ticks drop constraint if exists ticks_symbol_id_fkey;

create function ticks_symbols_exist() returns trigger language plpgsql as $$
declare
    wanted bigint;
    locked bigint;
    missing bigint;
begin
    select count(*) into wanted from (select distinct symbol_id from new_ticks) d;
    select count(*) into locked from (
        select s.id from symbols s
        where s.id in (select distinct symbol_id from new_ticks)
        for key share) l;
    if locked < wanted then
        select d.symbol_id into missing from (select distinct symbol_id from new_ticks) d
        where not exists (select 1 from symbols s where s.id = d.symbol_id) limit 1;
        raise foreign_key_violation using
            message = format('insert into ticks: symbol_id %s is not present in symbols',
                             missing),
            table = 'ticks';
    end if;
    return null;
end;
$$;

create trigger ticks_symbols_exist after insert on ticks
    referencing new table as new_ticks
    for each statement execute function ticks_symbols_exist();

create function symbols_keep_ticks() returns trigger language plpgsql as $$
begin
    if tg_op = 'TRUNCATE' then
        if exists (select 1 from ticks) then
            raise foreign_key_violation using
                message = 'cannot truncate symbols: ticks refer to them';
        end if;
        return null;
    end if;
    if (tg_op = 'DELETE' or old.id <> new.id)
       and exists (select 1 from ticks where symbol_id = old.id) then
        raise foreign_key_violation using
            message = format('symbol %s (id %s) still has ticks', old.symbol, old.id),
            table = 'symbols';
    end if;
    return null;
end;
$$;

create trigger symbols_keep_ticks after delete or update of id on symbols
    for each row execute function symbols_keep_ticks();
create trigger symbols_keep_ticks_truncate before truncate on symbols
    for each statement execute function symbols_keep_ticks();
"""

DOWNGRADE = """
drop trigger if exists symbols_keep_ticks_truncate on symbols;
drop trigger if exists symbols_keep_ticks on symbols;
drop function if exists symbols_keep_ticks();
drop trigger if exists ticks_symbols_exist on ticks;
drop function if exists ticks_symbols_exist();
alter table ticks add constraint ticks_symbol_id_fkey
    foreign key (symbol_id) references symbols (id);
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
