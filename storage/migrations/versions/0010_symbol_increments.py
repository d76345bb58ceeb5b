"""Per-symbol price and quantity increments; fractional backtest quantities.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

``symbols.price_increment`` / ``qty_increment`` / ``min_order_qty`` are the venue's
(Alpaca's ``/v2/assets``: ``price_increment``, ``min_trade_increment``,
``min_order_size``); NULL means the default rule of ``analytics/increments.py`` (equities:
a cent at or above a dollar, 0.0001 below; whole shares). ``backtest_trades.qty`` becomes
a double so a crypto backtest can hold 0.25 BTC (docs/trading-safety.md). dbt's staging
view over ``backtest_trades`` would refuse the type change, so the views that read the
table are dropped and created again from their own definitions around it.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _retype_qty(new_type: str) -> str:
    """``backtest_trades.qty`` to ``new_type`` with every view that reads the table (dbt's
    staging view) dropped first and created again from its saved definition."""
    return f"""
do $$
declare
    v record;
    saved text[] := '{{}}';
    statement text;
begin
    for v in
        select distinct format('%I.%I', n.nspname, c.relname) as name,
               pg_get_viewdef(c.oid) as body
        from pg_depend as d
        join pg_rewrite as r on r.oid = d.objid
        join pg_class as c on c.oid = r.ev_class
        join pg_namespace as n on n.oid = c.relnamespace
        where d.refobjid = 'backtest_trades'::regclass and c.relkind = 'v'
    loop
        saved := saved || format('create view %s as %s', v.name, v.body);
        execute format('drop view %s', v.name);
    end loop;
    alter table backtest_trades alter column qty type {new_type};
    foreach statement in array saved loop
        execute statement;
    end loop;
end;
$$;
"""


UPGRADE = """
alter table symbols
    add column price_increment double precision check (price_increment > 0),
    add column qty_increment double precision check (qty_increment > 0),
    add column min_order_qty double precision check (min_order_qty > 0);
""" + _retype_qty("double precision")

# whole shares again: a fractional quantity rounds up so the row still satisfies qty > 0
DOWNGRADE = (
    _retype_qty("integer using ceil(qty)::integer")
    + """
alter table symbols
    drop column if exists min_order_qty,
    drop column if exists qty_increment,
    drop column if exists price_increment;
"""
)


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
