"""A synthetic day of Alpaca stock trades, as columns and as the REST pages Alpaca would send
(``GET /v2/stocks/trades``, the shape of ``tests/data/alpaca/rest_stock_trades_*.json``),
for the backfill benchmark and the tests that need a large day.

The same seed gives the same trades on both sides, so a server process can build the pages
while the measuring process builds the same rows for its COPY reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson

EXCHANGES = np.array(["V", "D", "K", "P", "Q", "Z"], dtype=object)
CONDITIONS = (["@"], ["@", "I"], ["@", "F"], ["@", "T", "I"])


@dataclass(frozen=True)
class DayTrades:
    """One symbol's trades over one session, in time order (what Alpaca would store)."""

    symbol: str
    ts_ns: np.ndarray  # int64, ns since the epoch
    price: np.ndarray  # float64, cents
    size: np.ndarray  # float64, whole shares
    exchange: np.ndarray  # object
    raw_id: np.ndarray  # int64, the venue's id within its exchange
    condition: np.ndarray  # int8 index into CONDITIONS

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def trade_ids(self) -> np.ndarray:
        """The ids marketflow stores: exchange-prefixed, as the stream's."""
        return np.array(
            [f"{x}-{i}" for x, i in zip(self.exchange, self.raw_id.tolist(), strict=True)],
            dtype=object,
        )


def make_day(
    symbol: str, n: int, session_open: datetime, session_close: datetime, *, seed: int = 3
) -> DayTrades:
    rng = np.random.default_rng(seed)
    lo, hi = (int(t.timestamp() * 1e9) for t in (session_open, session_close))
    ts = np.sort(rng.integers(lo, hi, n, dtype=np.int64))
    price = np.round(180.0 + np.cumsum(rng.choice(np.array([-1, 0, 0, 1]), n)) * 0.01, 2)
    size = rng.choice(np.array([1.0, 5.0, 10.0, 50.0, 100.0, 200.0]), n)
    exchange = EXCHANGES[rng.integers(0, len(EXCHANGES), n)]
    raw_id = 52_983_525_000_000 + np.arange(n, dtype=np.int64)
    condition = rng.integers(0, len(CONDITIONS), n).astype(np.int8)
    return DayTrades(symbol, ts, np.maximum(price, 0.01), size, exchange, raw_id, condition)


def rfc3339_ns(ts_ns: np.ndarray) -> list[str]:
    """Alpaca's REST times: UTC, nine fraction digits, ``Z``."""
    text = np.datetime_as_string(ts_ns.astype("datetime64[ns]"), unit="ns")
    return [t + "Z" for t in text.tolist()]


def page_bodies(day: DayTrades, page_size: int) -> list[bytes]:
    """The day as consecutive pages; page k's ``next_page_token`` is ``str(k + 1)``."""
    times = rfc3339_ns(day.ts_ns)
    prices, sizes = day.price.tolist(), day.size.astype(np.int64).tolist()
    ids, conds = day.raw_id.tolist(), day.condition.tolist()
    pages = []
    count = (len(day) + page_size - 1) // page_size
    for k in range(count):
        lo, hi = k * page_size, min(len(day), (k + 1) * page_size)
        trades = [
            {"t": times[j], "x": day.exchange[j], "p": prices[j], "s": sizes[j],
             "c": CONDITIONS[conds[j]], "i": ids[j], "z": "C"}
            for j in range(lo, hi)
        ]  # fmt: skip
        token = str(k + 1) if k + 1 < count else None
        pages.append(orjson.dumps({"trades": {day.symbol: trades}, "next_page_token": token}))
    return pages


BENCH_DAY = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday (EST: 14:30-21:00 UTC)
SESSION = (datetime(2024, 3, 4, 14, 30, tzinfo=UTC), datetime(2024, 3, 4, 21, 0, tzinfo=UTC))
