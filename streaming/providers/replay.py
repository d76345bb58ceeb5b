"""``replay``: recorded trades (CSV or Parquet) through the live ingest path (docs/providers.md).

Columns (case-insensitive, first match wins):
``ts`` | ``timestamp`` | ``time`` | ``date`` — epoch numbers (s, ms, µs or ns, told apart by
magnitude) or ISO 8601 (naive means UTC); ``price``; ``size`` | ``amount`` | ``qty`` |
``quantity`` | ``volume``; optional ``symbol``, ``side`` (buy/sell, b/s, 1/-1, the venue's
aggressor), ``bid`` and ``ask`` (the quote in force) and ``trade_id`` | ``id``. A file without
a symbol column needs ``symbol=``. A day of the tick archive (docs/retention.md) is such a
file: its prints come back with their ids, sides and quotes.

Rows that cannot be parsed are counted in ``rejects`` and skipped. Recorded history is not
"live": the pipeline applies replay's own window (not in the future, not before 1990), and
crypto symbols trade around the clock (market ``'24/7'``, timezone UTC). Replaying a file
twice stores nothing new: trade ids come from the file or are derived from the print.
A symbol the file introduces gets a profile row size from its median price (the rule of
``storage.symbols.row_size_for_price``, docs/signal-marts.md) unless ``row_size`` is given.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.contracts import TickSource
from core.timestamps import NS
from storage.symbols import row_size_for_price
from streaming.providers.base import Event, Provider, ProviderError, TradeBatch

if TYPE_CHECKING:
    from core.settings import Settings

_TS = ("ts", "timestamp", "time", "date", "datetime")
_SIZE = ("size", "amount", "qty", "quantity", "volume")
_ID = ("trade_id", "id", "tid")
_SIDES = {"buy": 1, "b": 1, "1": 1, "sell": -1, "s": -1, "-1": -1}


def _pick(columns: Iterable[str], names: Sequence[str]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def parse_timestamps(values: pd.Series) -> np.ndarray:
    """int64 ns since the epoch; unparseable → -1 (rejected downstream as malformed)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().mean() > 0.5:
        x = numeric.to_numpy(dtype=np.float64)
        mag = np.nanmedian(np.abs(x)) if np.isfinite(x).any() else 0.0
        scale = 10**9 if mag < 1e11 else 10**6 if mag < 1e14 else 10**3 if mag < 1e17 else 1
        if pd.api.types.is_integer_dtype(numeric.dtype):  # exact: no float rounding
            return numeric.to_numpy(dtype=np.int64) * scale
        # fractional epochs: round to the microsecond (float64 cannot hold ns exactly)
        with np.errstate(invalid="ignore"):
            us = np.where(np.isfinite(x), np.round(x * (scale / 1000)), -1).astype(np.int64)
        return np.where(us >= 0, us * 1000, -1)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    out = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    out[parsed.isna().to_numpy()] = -1
    return out


def parse_sides(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype):  # 1 / -1, NaN unknown (Parquet int16)
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        return np.where(np.isin(numbers, (1.0, -1.0)), numbers, 0).astype(np.int8)
    text = values.astype(str).str.strip().str.lower()
    return text.map(_SIDES).fillna(0).to_numpy(dtype=np.int8)


def parse_quotes(values: pd.Series) -> np.ndarray:
    """A bid or ask column as float64, NaN where unknown or not a positive finite number."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    return np.where(np.isfinite(numbers) & (numbers > 0), numbers, np.nan)


def read_trades(path: Path, symbol: str | None) -> pd.DataFrame:
    """The file as columns symbol, ts_ns, price, size, side, bid, ask, trade_id (rows in
    file order)."""
    if not path.exists():
        raise ProviderError(f"replay file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pyarrow/pandas raise many types for a bad file
        raise ProviderError(f"cannot read {path}: {exc}") from exc
    ts_col, size_col = _pick(raw.columns, _TS), _pick(raw.columns, _SIZE)
    price_col = _pick(raw.columns, ("price", "p"))
    missing = [n for n, c in (("ts", ts_col), ("price", price_col), ("size", size_col)) if not c]
    if missing:
        raise ProviderError(f"{path.name}: no column for {', '.join(missing)}")
    sym_col = _pick(raw.columns, ("symbol", "ticker", "pair"))
    if symbol is None and sym_col is None:
        raise ProviderError(f"{path.name} has no symbol column: pass --symbol")
    out = pd.DataFrame(
        {
            "symbol": symbol.upper() if symbol else raw[sym_col].astype(str).str.upper(),
            "ts_ns": parse_timestamps(raw[ts_col]),
            "price": pd.to_numeric(raw[price_col], errors="coerce").to_numpy(np.float64),
            "size": pd.to_numeric(raw[size_col], errors="coerce").to_numpy(np.float64),
        }
    )
    side_col = _pick(raw.columns, ("side", "aggressor", "taker_side"))
    out["side"] = parse_sides(raw[side_col]) if side_col else np.zeros(len(raw), np.int8)
    for name in ("bid", "ask"):
        column = _pick(raw.columns, (name,))
        out[name] = parse_quotes(raw[column]) if column else np.full(len(raw), np.nan)
    id_col = _pick(raw.columns, _ID)
    if id_col:
        ids = raw[id_col].astype(str).str.strip()
        out["trade_id"] = ids.where(ids != "", None)
    else:
        out["trade_id"] = None
    return out


class ReplayProvider(Provider):
    name = "replay"

    def __init__(
        self,
        path: Path,
        *,
        symbol: str | None = None,
        market: str | None = None,
        speed: float | None = None,  # None → as fast as possible; N → N× recorded speed
        chunk: int = 5_000,
        row_size: float | None = None,  # profile bin of new symbols; None → from the price
    ) -> None:
        self.path = Path(path)
        self.frame = read_trades(self.path, symbol)
        bad = self.frame["ts_ns"].to_numpy() < 0
        super().__init__(sorted(self.frame.loc[~bad, "symbol"].unique().tolist()))
        if bad.any():
            self.rejects.add("malformed", f"{int(bad.sum())} rows with unparseable timestamps")
            self.rejects.counts["malformed"] += int(bad.sum()) - 1
            self.frame = self.frame.loc[~bad].reset_index(drop=True)
        self.live = False
        self.tick_source = TickSource.REPLAY  # feed unknown: the file says nothing of its tape
        self.speed = speed
        self.chunk = chunk
        self.total = len(self.frame)
        self.counters["replayed"] = 0
        self.counters["total"] = self.total
        if market is not None:
            from analytics.sessions import SUPPORTED_MARKETS, market_timezone

            if market not in SUPPORTED_MARKETS:
                known = ", ".join(SUPPORTED_MARKETS)
                raise ProviderError(f"unknown market {market!r}: choose one of {known}")
        if row_size is not None and not (math.isfinite(row_size) and row_size > 0):
            raise ProviderError(f"row size must be a positive number, got {row_size}")
        self.row_sizes = self._row_sizes(row_size)
        for sym in self.symbols:
            self.symbol_info[sym] = {"row_size": self.row_sizes[sym]}
            if market is not None:
                tz = market_timezone(market)
                asset = "crypto" if market == "24/7" else "stock"
                self.symbol_info[sym] |= {
                    "market": market,
                    "timezone": tz,
                    "asset_type": asset,
                    "update": True,
                }

    def _row_sizes(self, row_size: float | None) -> dict[str, float]:
        """Each symbol's row size for a new `symbols` row: the given one, else the rule of
        `storage.symbols.row_size_for_price` on the median price of its rows in the file.
        A symbol that already exists keeps its own (the pipeline only inserts new ones)."""
        if row_size is not None:
            return dict.fromkeys(self.symbols, float(row_size))
        prices = self.frame.loc[np.isfinite(self.frame["price"]) & (self.frame["price"] > 0)]
        medians = prices.groupby("symbol")["price"].median()
        return {
            sym: row_size_for_price(float(medians.get(sym, float("nan")))) for sym in self.symbols
        }

    def _batches(self, part: pd.DataFrame) -> Iterable[TradeBatch]:
        for sym, group in part.groupby("symbol", sort=False):
            tid = group["trade_id"].to_numpy(dtype=object)
            bid, ask = group["bid"].to_numpy(np.float64), group["ask"].to_numpy(np.float64)
            quoted = bool(np.isfinite(bid).any() or np.isfinite(ask).any())
            yield TradeBatch(
                str(sym),
                group["ts_ns"].to_numpy(np.int64),
                group["price"].to_numpy(np.float64),
                group["size"].to_numpy(np.float64),
                group["side"].to_numpy(np.int8),
                bid if quoted else None,
                ask if quoted else None,
                None if all(t is None for t in tid) else tid,
                None,
            )

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        frame = self.frame
        if self.speed is None:
            for start in range(0, len(frame), self.chunk):
                if self.stopping:
                    return
                part = frame.iloc[start : start + self.chunk]
                for batch in self._batches(part):
                    yield batch
                self.counters["replayed"] = min(self.total, start + self.chunk)
            return
        # recorded speed: emit each print when its offset / speed has elapsed
        frame = frame.sort_values("ts_ns", kind="stable").reset_index(drop=True)
        ts = frame["ts_ns"].to_numpy()
        t0, wall0 = int(ts.min()) if len(ts) else 0, time.monotonic()
        start = 0
        while start < len(frame) and not self.stopping:
            elapsed = (time.monotonic() - wall0) * self.speed * NS
            end = int(np.searchsorted(ts, t0 + elapsed, side="right"))
            end = max(end, start)
            if end > start:
                for batch in self._batches(frame.iloc[start:end]):
                    yield batch
                start = end
                self.counters["replayed"] = start
            else:
                wait = (int(ts[start]) - t0) / self.speed / NS - (time.monotonic() - wall0)
                if await self.sleep(min(max(wait, 0.001), 0.25)):
                    return
            await asyncio.sleep(0)


class EventsProvider(Provider):
    """Replays given events (in memory) then ends: handy for tests and tools."""

    name = "events"

    def __init__(
        self, events: Iterable[Event | TradeBatch | object], symbols: Sequence[str] = ()
    ) -> None:
        super().__init__(symbols)
        self.events = list(events)

    async def stream(self) -> AsyncIterator[Event | TradeBatch]:
        for event in self.events:
            if self.stopping:
                return
            # a test source: whatever it was given goes through, bad events included
            yield event  # type: ignore[misc]


def build(settings: Settings, symbols: Sequence[str]) -> Provider:
    raise ProviderError("replay reads a file: run `marketflow replay FILE` instead of PROVIDER")
