"""Writes of the per-symbol footprint parameters (table ``footprint_config``,
docs/semantics.md "Per-symbol parameters"), and the listing by symbol name.

A null column, or no row at all, is the default of ``analytics.footprint_config`` (the
defaults' one home): setting a parameter writes its column, resetting it writes a null,
and a row left with nothing but nulls is removed. Each call is one transaction, so a write
the table's check constraints refuse leaves the row as it was. Nothing here validates:
the caller runs the values through ``FootprintConfig`` first (and names only the table's
columns: they are quoted as identifiers), the constraints are the second guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from storage.queries import footprint_configs

# the row holds no parameter any more: every column but the key and the timestamp is null
# (read from the row itself, so a parameter added to the table needs no change here)
_ALL_DEFAULTS = (
    "not exists (select 1 from jsonb_each(to_jsonb(f) - 'symbol_id' - 'updated_at')"
    " where value <> 'null'::jsonb)"
)


def configs_by_symbol(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Every symbol with a footprint_config row, by name (sorted): its stored columns,
    null meaning the default."""
    names: dict[int, str] = {
        int(r[0]): str(r[1]) for r in conn.execute("select id, symbol from symbols")
    }
    rows = footprint_configs(conn)
    return {names[sid]: rows[sid] for sid in sorted(rows, key=names.__getitem__)}


def set_parameters(
    conn: psycopg.Connection, symbol_id: int, values: Mapping[str, float | int]
) -> None:
    """Store the given parameters (column → value) of one symbol; its other columns stay
    as they were."""
    columns = list(values)
    if not columns:
        return
    statement = sql.SQL(
        "insert into footprint_config (symbol_id, {columns}) values (%s, {params})"
        " on conflict (symbol_id) do update set {updates}, updated_at = now()"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        params=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
        ),
    )
    with conn.transaction():
        conn.execute(statement, (symbol_id, *(values[c] for c in columns)))


def reset_parameters(
    conn: psycopg.Connection, symbol_id: int, columns: Iterable[str] | None = None
) -> None:
    """Return one symbol's parameters to their defaults: the named columns (nulls), or all
    of them (``columns`` None: the row removed). A row left all null is removed."""
    with conn.transaction():
        if columns is None:
            conn.execute("delete from footprint_config where symbol_id = %s", (symbol_id,))
            return
        names = list(columns)
        if names:
            conn.execute(
                sql.SQL(
                    "update footprint_config set {nulls}, updated_at = now() where symbol_id = %s"
                ).format(
                    nulls=sql.SQL(", ").join(
                        sql.SQL("{} = null").format(sql.Identifier(c)) for c in names
                    )
                ),
                (symbol_id,),
            )
        conn.execute(
            f"delete from footprint_config f where symbol_id = %s and {_ALL_DEFAULTS}",
            (symbol_id,),
        )
