"""1-minute candles from trades, finalised by a wall-clock timer (docs/architecture.md).

A minute is not left open until a later-minute trade of the same symbol arrives
(so the last bar of a session waited for the next session) and let a late print open a new
partial bar that then *replaces* the complete one. Here:

* ``add`` folds prints into per-(symbol, minute) partial aggregates (``core.candle.Candle``,
  which keeps the time of its first and last print and holds the one merge rule);
* ``due(now)`` hands out every minute whose end plus ``grace`` has passed on the wall clock,
  whether or not another trade came — and every late partial (a print for a minute already
  handed out), which storage *merges* into the stored candle, never replaces;
* ``current`` gives the running candle of a minute for live publishing.

Everything here is pure (no I/O); the pipeline writes what ``due`` returns.
"""

from __future__ import annotations

import numpy as np

from core.candle import Candle
from core.timestamps import MINUTE_NS, NS


def aggregate(
    symbol_id: np.ndarray, ts_ns: np.ndarray, price: np.ndarray, size: np.ndarray
) -> list[Candle]:
    """Partial candles of a chunk of prints (any symbols, any order).

    Within a minute, open/close follow print time; prints with the same timestamp keep
    their arrival order (a stable sort), as a venue's sequence would.
    """
    n = ts_ns.shape[0]
    if n == 0:
        return []
    minute = ts_ns - np.mod(ts_ns, MINUTE_NS)
    order = np.lexsort((np.arange(n), ts_ns, minute, symbol_id))
    sid, mnt, ts, px, sz = symbol_id[order], minute[order], ts_ns[order], price[order], size[order]
    change = np.empty(n, bool)
    change[0] = True
    change[1:] = (sid[1:] != sid[:-1]) | (mnt[1:] != mnt[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n) - 1
    high = np.maximum.reduceat(px, starts)
    low = np.minimum.reduceat(px, starts)
    volume = np.add.reduceat(sz, starts)
    value = np.add.reduceat(px * sz, starts)
    counts = ends - starts + 1
    return [
        Candle(
            int(sid[s]),
            int(mnt[s]),
            float(px[s]),
            float(high[i]),
            float(low[i]),
            float(px[e]),
            float(volume[i]),
            int(counts[i]),
            float(value[i]),
            int(ts[s]),
            int(ts[e]),
        )
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]


class CandleBuilder:
    """Running candles per (symbol, minute); see the module docstring."""

    def __init__(self, grace_s: float = 2.0) -> None:
        self.grace_ns = int(grace_s * NS)
        self.open: dict[tuple[int, int], Candle] = {}
        self.late: dict[tuple[int, int], Candle] = {}
        self.late_prints = 0

    def final_at(self, minute_ns: int) -> int:
        """Wall-clock time (ns) at which the minute is finalised."""
        return minute_ns + MINUTE_NS + self.grace_ns

    def add(
        self,
        symbol_id: np.ndarray,
        ts_ns: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
        now_ns: int,
    ) -> list[Candle]:
        """Fold prints in; returns the updated running candles (for publishing; late
        partials are not returned — they are published once merged into storage)."""
        touched: list[Candle] = []
        for part in aggregate(symbol_id, ts_ns, price, size):
            key = (part.symbol_id, part.minute_ns)
            if self.final_at(part.minute_ns) <= now_ns and key not in self.open:
                # the minute was handed out already: this partial will be merged into it
                prev = self.late.get(key)
                self.late[key] = part if prev is None else prev.merge(part)
                self.late_prints += part.trade_count
                continue
            prev = self.open.get(key)
            self.open[key] = part if prev is None else prev.merge(part)
            touched.append(self.open[key])
        return touched

    def due(self, now_ns: int) -> tuple[list[Candle], list[Candle]]:
        """(minutes finalised by the timer, late partials to merge); both leave the builder."""
        final_keys = [k for k in self.open if self.final_at(k[1]) <= now_ns]
        final = [self.open.pop(k) for k in sorted(final_keys, key=lambda k: (k[1], k[0]))]
        late = list(self.late.values())
        self.late.clear()
        return final, late

    def drain(self) -> list[Candle]:
        """Everything still held (shutdown): running minutes and late partials."""
        out = list(self.open.values()) + list(self.late.values())
        self.open.clear()
        self.late.clear()
        return out

    def current(self, symbol_id: int, minute_ns: int) -> Candle | None:
        return self.open.get((symbol_id, minute_ns))
