"""One day partition of ``ticks`` as an Arrow table in the archive's schema, read fast.

As in ``storage.tick_reads``, the server packs each fixed-width column of a symbol's day
into one byte string in its binary send format and numpy reads it, so no Python runs per
tick for them; nullable columns travel with a one-byte-per-row validity string, so a NULL
and any stored value (a NaN quote included) stay apart. Only the text columns (trade id,
exchange, conditions as JSON, source, feed) come back as Python strings. One row per symbol
keeps every string below PostgreSQL's 1 GB limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from storage.tick_archive import SCHEMA

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds

# column → (send function, big-endian numpy type, nullable)
_FIXED: dict[str, tuple[str, str, bool]] = {
    "ts": ("timestamptz_send", ">i8", False),
    "price": ("float8send", ">f8", False),
    "size": ("float8send", ">f8", False),
    "side": ("int2send", ">i2", True),
    "bid": ("float8send", ">f8", True),
    "ask": ("float8send", ">f8", True),
    "seq": ("int8send", ">i8", False),
    "received_at": ("timestamptz_send", ">i8", True),
}
_ZERO = {">i8": "0::int8", ">f8": "0::float8", ">i2": "0::int2"}
_ORDER = "order by t.ts, t.seq"


def _packed(name: str, send: str, kind: str, nullable: bool) -> list[str]:
    value = f"t.{name}"
    if kind == ">i8" and send == "timestamptz_send" and nullable:
        value = f"coalesce(t.{name}, 'epoch'::timestamptz)"
    elif nullable:
        value = f"coalesce(t.{name}, {_ZERO[kind]})"
    parts = [f"string_agg({send}({value}), ''::bytea {_ORDER})"]
    if nullable:
        parts.append(
            f"string_agg(case when t.{name} is null then '\\x00'::bytea "
            f"else '\\x01'::bytea end, ''::bytea {_ORDER})"
        )
    return parts


_SELECT = ", ".join(
    [
        "t.symbol_id",
        "min(s.symbol)",
        *(p for name, spec in _FIXED.items() for p in _packed(name, *spec)),
        f"array_agg(t.trade_id {_ORDER})",
        f"array_agg(t.exchange {_ORDER})",
        f"array_agg(array_to_json(t.conditions)::text {_ORDER})",
        f"array_agg(t.source {_ORDER})",
        f"array_agg(t.feed {_ORDER})",
    ]
)


def _column(name: str, raw: bytes | None, valid: bytes | None, n: int) -> pa.Array:
    kind = _FIXED[name][1]
    values = np.frombuffer(raw or b"", dtype=kind).astype(kind.replace(">", "="))
    if name in ("ts", "received_at"):
        values = values + _PG_EPOCH_US
    mask = None if valid is None else np.frombuffer(valid, dtype=np.uint8) == 0
    if values.shape[0] != n or (mask is not None and mask.shape[0] != n):
        raise ValueError(f"column {name} came back with {values.shape[0]} values for {n} rows")
    return pa.array(values, type=SCHEMA.field(name).type, mask=mask)


def _symbol_batch(row: Sequence[object]) -> pa.RecordBatch:
    symbol_id, symbol = int(row[0]), str(row[1])  # type: ignore[call-overload]
    trade_ids, exchanges, conditions, sources, feeds = row[-5:]
    assert isinstance(trade_ids, list) and isinstance(exchanges, list)
    assert isinstance(conditions, list)
    n = len(trade_ids)
    columns: dict[str, pa.Array] = {
        "symbol": pa.array([symbol] * n, type=pa.string()),
        "symbol_id": pa.array(np.full(n, symbol_id, dtype=np.int64)),
        "trade_id": pa.array(trade_ids, type=pa.string()),
        "exchange": pa.array(exchanges, type=pa.string()),
        "conditions": pa.array(
            [None if c is None else json.loads(c) for c in conditions],
            type=SCHEMA.field("conditions").type,
        ),
        "source": pa.array(sources, type=pa.string()),
        "feed": pa.array(feeds, type=pa.string()),
    }
    k = 2
    for name, (_send, _kind, nullable) in _FIXED.items():
        raw = row[k]
        valid = row[k + 1] if nullable else None
        columns[name] = _column(name, raw, valid, n)  # type: ignore[arg-type]
        k += 2 if nullable else 1
    return pa.record_batch([columns[f.name] for f in SCHEMA], schema=SCHEMA)


def fetch_partition(conn: psycopg.Connection, part: str) -> pa.Table:
    """Every row of one day partition with its symbol's name, in (symbol_id, ts, seq) order."""
    query = sql.SQL(
        "select {} from {} as t join symbols as s on s.id = t.symbol_id "
        "group by t.symbol_id order by t.symbol_id"
    ).format(sql.SQL(_SELECT), sql.Identifier(part))
    with conn.cursor(binary=True) as cur:
        cur.execute(query)
        batches = [_symbol_batch(row) for row in cur]
    return pa.Table.from_batches(batches, schema=SCHEMA)
