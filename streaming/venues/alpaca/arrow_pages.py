"""The fast reader of Alpaca trades pages: Arrow's JSON reader with the page's schema, then
Arrow compute for the columns (docs/history.md).

A 10 000-trade page as Python objects costs tens of thousands of dicts and strings, and
the interpreter is held while they are built; Arrow reads the body straight into columns
and lets go of the interpreter meanwhile, so the history's fetch thread parses a page while
its writer COPYs the previous one. The schema names the requested symbols; a symbol the
request did not ask for is still read (as an inferred field) and counted. Anything this
reader does not expect — a body spread over several lines, a field of another type, a
time Arrow cannot cast — returns None, and ``trade_pages`` reads the body the explicit way
with the same rules.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from streaming.venues.alpaca.trade_pages import FLAGGED, MISSING, NAT, RawColumns

TRADE = pa.struct(
    [
        ("t", pa.string()),
        ("x", pa.string()),
        ("p", pa.float64()),
        ("s", pa.float64()),
        ("c", pa.list_(pa.string())),
        ("i", pa.int64()),
        ("z", pa.string()),
        ("tks", pa.string()),
        ("u", pa.string()),
    ]
)
UTC_NS = pa.timestamp("ns", tz="UTC")
_SEPARATOR = "\x1f"  # joins a trade's conditions into one dictionary-encodable string


@lru_cache(maxsize=64)
def _options(names: tuple[str, ...]) -> pj.ParseOptions:
    trades = pa.struct([(name, pa.list_(TRADE)) for name in names])
    schema = pa.schema([("trades", trades), ("next_page_token", pa.string())])
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")


def read(
    body: bytes, names: tuple[str, ...]
) -> tuple[str | None, dict[str, RawColumns], dict[str, int]] | None:
    """(next page token, requested symbol → its columns, unknown symbol → trade count), or
    None when the body is not in the shape this reader handles."""
    options = pj.ReadOptions(block_size=max(1 << 16, len(body) + 1), use_threads=False)
    try:
        table = pj.read_json(io.BytesIO(body), read_options=options, parse_options=_options(names))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != 1:
        return None
    token = table.column("next_page_token")[0].as_py()
    trades = table.column("trades").combine_chunks()
    if not pa.types.is_struct(trades.type):
        return None
    columns: dict[str, RawColumns] = {}
    unknown: dict[str, int] = {}
    for index in range(trades.type.num_fields):
        name = trades.type.field(index).name
        lists = trades.field(index)
        if name not in names:
            unknown[name] = _count(lists)
            continue
        if not pa.types.is_list(lists.type) or lists.type.value_type != TRADE:
            return None  # an inferred type: not the shape we read here
        if lists.null_count or len(lists) != 1:
            continue  # `null` for the symbol: no trades
        raw = _columns(name, lists[0].values)
        if raw is None:
            return None
        columns[name] = raw
    return token, columns, unknown


def _count(lists: pa.Array) -> int:
    if pa.types.is_list(lists.type) and len(lists) == 1 and lists.null_count == 0:
        return len(lists[0].values)
    return 0


def _columns(name: str, trades: pa.StructArray) -> RawColumns | None:
    t, x, p, s, c, i = (trades.field(k) for k in ("t", "x", "p", "s", "c", "i"))
    try:
        times = pc.cast(t, UTC_NS).cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a time Arrow cannot read: the explicit path tells which
    ids = pc.cast(i, pa.string())
    prefixed = pc.binary_join_element_wise(x, ids, "-")
    side = pc.if_else(pc.equal(trades.field("tks"), "B"), 1, 0)
    side = pc.if_else(pc.equal(trades.field("tks"), "S"), -1, side)
    updates = trades.field("u")
    missing = {
        reason: np.asarray(column.is_null().to_numpy(zero_copy_only=False))
        for key, reason in MISSING.items()
        if (column := trades.field(key)).null_count
    }
    return RawColumns(
        name,
        pc.fill_null(times, NAT).to_numpy(),
        p.to_numpy(zero_copy_only=False),
        s.to_numpy(zero_copy_only=False),
        pc.coalesce(prefixed, ids).to_numpy(zero_copy_only=False),
        x.to_numpy(zero_copy_only=False),
        _conditions(c),
        pc.fill_null(side, 0).cast(pa.int8()).to_numpy(zero_copy_only=False),
        missing,
        np.zeros(len(trades), bool),  # every field had its type, or the read failed
        {
            u: pc.fill_null(pc.equal(updates, u), False).to_numpy(zero_copy_only=False)
            for u in FLAGGED
            if updates.null_count < len(updates)
        },
        lambda k: _sample(trades, k),
    )


def _conditions(lists: pa.ListArray) -> np.ndarray:
    """Each trade's conditions as a tuple shared by every trade with the same set (a page
    has a few distinct sets), None for none: dictionary-encoded, so no object per trade."""
    joined = pc.binary_join(lists, _SEPARATOR)
    encoded = pc.dictionary_encode(joined)
    sets = encoded.dictionary.to_pylist()
    distinct = np.empty(len(sets) + 1, dtype=object)
    distinct[:-1] = [tuple(d.split(_SEPARATOR)) if d else None for d in sets]
    distinct[-1] = None  # the index of a trade without conditions
    indices = pc.fill_null(encoded.indices, len(distinct) - 1).to_numpy(zero_copy_only=False)
    return distinct[indices]


def _sample(trades: pa.StructArray, k: int) -> dict[str, Any]:
    return {key: value for key, value in trades[k].as_py().items() if value is not None}
