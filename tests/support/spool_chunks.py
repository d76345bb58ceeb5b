"""Tick chunks for the durable buffer's tests, and draining a buffer back to trade ids."""

from __future__ import annotations

import numpy as np

from core.timestamps import NS
from streaming.ingest.rows import TickRows
from streaming.ingest.spool import DurableBuffer


def chunk(start: int, n: int) -> TickRows:
    ids = np.empty(n, object)
    ids[:] = [f"t{i}" for i in range(start, start + n)]
    cond = np.empty(n, object)
    cond[:] = [("@", "T") if i % 2 else None for i in range(n)]
    return TickRows(
        np.full(n, 1, np.int64), np.arange(start, start + n, dtype=np.int64) * NS, ids,
        np.full(n, 10.0), np.full(n, 2.0), np.resize(np.array([1, -1, 0], np.int8), n),
        np.full(n, np.nan), np.full(n, 10.01), np.full(n, "X", object), cond,
        np.full(n, "stream", object), np.full(n, "iex", object),
    )  # fmt: skip


def drain(buf: DurableBuffer) -> list[str]:
    out: list[str] = []
    while (c := buf.next_chunk(1000)) is not None:
        out.extend(c.trade_id.tolist())
        buf.commit()
    return out
