"""Trading limits checked by the database: strategy parameters within safe bounds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

A 0 or negative ATR multiplier became a one-cent stop and a maximum-size order; a risk
percentage of 50 sized every order from half the account. The engine validates strategy
parameters when it loads them (``strategies/definitions.py``); these
constraints keep the same bounds in the tables, so a bad row is refused when written
instead of skipped when read. The bounds (docs/trading-safety.md):

* ``atr_stop_multiplier``, ``atr_target_multiplier``: a number in [0.1, 20];
* ``risk_per_trade_pct``: a number in (0, 5];
* ``max_positions``: an integer in [1, 100];
* ``max_daily_loss_pct``: a number in (0, 50];
* ``strategies.cooldown_seconds`` ≥ 0; ``parameters`` / ``definition`` are JSON objects.

A JSON key that is absent or ``null`` means "use the default" and passes. The numbers are
repeated from the engine's validation on purpose: a migration is frozen text and must not
import application code that later changes.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
create function json_number_within(
    value jsonb, low double precision, high double precision, low_open boolean,
    whole boolean default false
) returns boolean language sql immutable as $$
    select case
        when value is null or jsonb_typeof(value) = 'null' then true
        when jsonb_typeof(value) <> 'number' then false
        when whole and value::numeric <> trunc(value::numeric) then false
        when low_open then value::double precision > low and value::double precision <= high
        else value::double precision >= low and value::double precision <= high
    end
$$;

alter table strategy_configs
    add constraint strategy_configs_risk_pct_check check (
        risk_per_trade_pct is null or (risk_per_trade_pct > 0 and risk_per_trade_pct <= 5)),
    add constraint strategy_configs_max_positions_check check (
        max_positions is null or max_positions between 1 and 100),
    add constraint strategy_configs_parameters_check check (
        jsonb_typeof(parameters) = 'object'
        and json_number_within(parameters -> 'atr_stop_multiplier', 0.1, 20, false)
        and json_number_within(parameters -> 'atr_target_multiplier', 0.1, 20, false)
        and json_number_within(parameters -> 'risk_per_trade_pct', 0, 5, true)
        and json_number_within(parameters -> 'max_positions', 1, 100, false, true));

alter table strategies
    add constraint strategies_cooldown_check check (cooldown_seconds >= 0),
    add constraint strategies_definition_limits_check check (
        jsonb_typeof(definition) = 'object'
        and json_number_within(definition -> 'atr_stop_multiplier', 0.1, 20, false)
        and json_number_within(definition -> 'atr_target_multiplier', 0.1, 20, false)
        and json_number_within(definition -> 'risk_per_trade_pct', 0, 5, true)
        and json_number_within(definition -> 'max_positions', 1, 100, false, true)
        and json_number_within(definition -> 'max_daily_loss_pct', 0, 50, true));
"""

DOWNGRADE = """
alter table strategies
    drop constraint if exists strategies_definition_limits_check,
    drop constraint if exists strategies_cooldown_check;
alter table strategy_configs
    drop constraint if exists strategy_configs_parameters_check,
    drop constraint if exists strategy_configs_max_positions_check,
    drop constraint if exists strategy_configs_risk_pct_check;
drop function if exists json_number_within(jsonb, double precision, double precision, boolean,
    boolean);
"""


def _run(block: str) -> None:
    # straight to the psycopg cursor without parameters (see 0001)
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(block)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
