"""Validated tick rows as columns: what the pipeline buffers, spills and writes.

One ``TickRows`` chunk holds rows of any symbols in arrival order. Columns are numpy arrays
so validation, candle aggregation and the spool work per chunk rather than per print; the
Arrow round trip is the spool's on-disk format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa

from core.timestamps import NS
from storage.tick_rows import UNKNOWN_SOURCE, derived_trade_id

DAY_NS = 86_400 * NS


@dataclass(slots=True)
class TickRows:
    symbol_id: np.ndarray  # int64
    ts_ns: np.ndarray  # int64, ns since the epoch (UTC)
    trade_id: np.ndarray  # object (str)
    price: np.ndarray  # float64
    size: np.ndarray  # float64
    side: np.ndarray  # int8: 1 buy, -1 sell, 0 unknown (NULL)
    bid: np.ndarray  # float64, NaN unknown
    ask: np.ndarray  # float64, NaN unknown
    exchange: np.ndarray  # object (str | None)
    conditions: np.ndarray  # object (tuple[str, ...] | None)
    source: np.ndarray  # object (str): ticks.source, core.contracts.TickSource
    feed: np.ndarray  # object (str | None): ticks.feed

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def take(self, index: np.ndarray) -> TickRows:
        return TickRows(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def empty() -> TickRows:
        return TickRows(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, object),
            np.empty(0),
            np.empty(0),
            np.empty(0, np.int8),
            np.empty(0),
            np.empty(0),
            np.empty(0, object),
            np.empty(0, object),
            np.empty(0, object),
            np.empty(0, object),
        )

    @staticmethod
    def concat(chunks: Sequence[TickRows]) -> TickRows:
        if not chunks:
            return TickRows.empty()
        if len(chunks) == 1:
            return chunks[0]
        return TickRows(
            *(np.concatenate([getattr(c, f.name) for c in chunks]) for f in fields(TickRows))
        )

    def to_arrow(self) -> pa.RecordBatch:
        cond = [list(c) if c else None for c in self.conditions]
        return pa.record_batch(
            {
                "symbol_id": pa.array(self.symbol_id, pa.int64()),
                "ts_ns": pa.array(self.ts_ns, pa.int64()),
                "trade_id": pa.array(self.trade_id, pa.string()),
                "price": pa.array(self.price, pa.float64()),
                "size": pa.array(self.size, pa.float64()),
                "side": pa.array(self.side, pa.int8()),
                "bid": pa.array(self.bid, pa.float64()),
                "ask": pa.array(self.ask, pa.float64()),
                "exchange": pa.array(self.exchange, pa.string()),
                "conditions": pa.array(cond, pa.list_(pa.string())),
                "source": pa.array(self.source, pa.string()),
                "feed": pa.array(self.feed, pa.string()),
            }
        )

    @staticmethod
    def from_arrow(batch: pa.RecordBatch) -> TickRows:
        col = batch.column
        n = batch.num_rows
        cond = np.empty(n, object)
        cond[:] = [tuple(c) if c else None for c in col("conditions").to_pylist()]
        names = batch.schema.names
        # spool records written before provenance existed have neither column
        source = (
            np.asarray(col("source").to_pylist(), dtype=object)
            if "source" in names
            else np.full(n, UNKNOWN_SOURCE, object)
        )
        feed = (
            np.asarray(col("feed").to_pylist(), dtype=object)
            if "feed" in names
            else np.full(n, None, object)
        )
        return TickRows(
            col("symbol_id").to_numpy(zero_copy_only=False).astype(np.int64),
            col("ts_ns").to_numpy(zero_copy_only=False).astype(np.int64),
            np.asarray(col("trade_id").to_pylist(), dtype=object),
            col("price").to_numpy(zero_copy_only=False).astype(np.float64),
            col("size").to_numpy(zero_copy_only=False).astype(np.float64),
            col("side").to_numpy(zero_copy_only=False).astype(np.int8),
            col("bid").to_numpy(zero_copy_only=False).astype(np.float64),
            col("ask").to_numpy(zero_copy_only=False).astype(np.float64),
            np.asarray(col("exchange").to_pylist(), dtype=object),
            cond,
            source,
            feed,
        )


def derived_trade_ids(ts_ns: np.ndarray, price: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Ids for prints of one symbol that come without one, in the storage convention
    (``storage.tick_rows.derived_trade_id``: price, size and the ordinal among identical
    prints of the chunk), so a retried or replayed chunk maps onto the same keys while
    distinct prints at the same instant, price and size are all kept."""
    n = ts_ns.shape[0]
    out = np.empty(n, dtype=object)
    seen: dict[tuple[int, float, float], int] = {}
    for i, key in enumerate(zip(ts_ns.tolist(), price.tolist(), size.tolist(), strict=True)):
        k = seen.get(key, 0)
        seen[key] = k + 1
        out[i] = derived_trade_id(key[1], key[2], k)
    return out


def utc_days(rows: TickRows) -> set[date]:
    """The UTC days the rows fall on (the partitions a write needs)."""
    if not len(rows):
        return set()
    return {
        datetime.fromtimestamp(int(d) * 86_400, tz=UTC).date()
        for d in np.unique(rows.ts_ns // DAY_NS)
    }


def to_writer_rows(rows: TickRows) -> tuple[list[tuple], set[date]]:
    """TickRows → (``storage.tick_rows.COLUMNS`` tuples, UTC days), the row-by-row form of
    a COPY (the benchmarks' reference; the writers encode columns, ``storage.binary_copy``).

    ``ts`` goes out as int µs since the Unix epoch: register ``timestamptz_copy`` on the
    connection, which spares building an aware datetime per row.
    Columns that are all NULL or all known skip their per-row conversion.
    """
    n = len(rows)
    ts = (rows.ts_ns // 1000).tolist()
    side = [None] * n if not rows.side.any() else [s or None for s in rows.side.tolist()]

    def nullable(a: np.ndarray) -> list[float | None]:
        nan = np.isnan(a)
        if not nan.any():
            return a.tolist()
        if nan.all():
            return [None] * n
        return [None if x != x else x for x in a.tolist()]  # NaN → NULL

    # tuples or lists as they come: the writer's text[] dumper takes both (text_array_copy)
    conds = rows.conditions
    cond: list[Sequence[str] | None] = [None] * n if not any(conds) else conds.tolist()
    out = list(
        zip(
            rows.symbol_id.tolist(),
            ts,
            rows.trade_id.tolist(),
            rows.price.tolist(),
            rows.size.tolist(),
            rows.exchange.tolist(),
            cond,
            side,
            nullable(rows.bid),
            nullable(rows.ask),
            rows.source.tolist(),
            rows.feed.tolist(),
            strict=True,
        )
    )
    return out, utc_days(rows)
