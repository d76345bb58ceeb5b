"""The one-minute candle and its merge rule, used by ingest, storage, the assets and tests.

A candle is a whole minute's bar or a part of one (the prints a stream chunk held). Each part
keeps the times of its first and last print, so two parts merge exactly:

* open of the part whose first print is earliest (a tie keeps the stored part's open),
* close of the part whose last print is latest (a tie goes to the newer part),
* high = max, low = min, volume, trade count and value (Σ price·size) add.

A bar without print times (a provider's bar) spans its whole minute. A bar without a known
value (no VWAP given) makes the merged VWAP unknown rather than wrong. Late prints therefore
widen a stored minute instead of replacing it (docs/semantics.md, candles).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.timestamps import MINUTE_NS, to_datetime, to_ns


@dataclass(slots=True)
class Candle:
    """A part or the whole of one symbol's one-minute bar."""

    symbol_id: int
    minute_ns: int  # minute start, ns since the epoch (UTC)
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int = 0
    value: float | None = None  # Σ price·size; None when part of the volume has no known price
    first_ts_ns: int | None = None  # first print; None: the bar spans its minute
    last_ts_ns: int | None = None

    @property
    def vwap(self) -> float | None:
        if self.value is None or self.volume <= 0:
            return None
        return self.value / self.volume

    @property
    def first(self) -> int:
        return self.minute_ns if self.first_ts_ns is None else self.first_ts_ns

    @property
    def last(self) -> int:
        return self.minute_ns + MINUTE_NS - 1000 if self.last_ts_ns is None else self.last_ts_ns

    @property
    def ts(self) -> datetime:
        return to_datetime(self.minute_ns)

    @classmethod
    def bar(
        cls,
        symbol_id: int,
        ts: datetime,
        ohlcv: tuple[float, float, float, float, float],
        trade_count: int = 0,
        vwap: float | None = None,
        first_ts: datetime | None = None,
        last_ts: datetime | None = None,
    ) -> Candle:
        """A bar as a provider or the database gives it (datetimes and a VWAP)."""
        o, h, lo, c, v = ohlcv
        value = vwap * v if vwap is not None else (0.0 if v == 0 else None)
        return cls(
            symbol_id,
            to_ns(ts),
            o,
            h,
            lo,
            c,
            v,
            trade_count,
            value,
            None if first_ts is None else to_ns(first_ts),
            None if last_ts is None else to_ns(last_ts),
        )

    def merge(self, newer: Candle) -> Candle:
        """This part with a ``newer`` part of the same minute (see the module docstring)."""
        first = newer if newer.first < self.first else self
        last = newer if newer.last >= self.last else self
        value = None if self.value is None or newer.value is None else self.value + newer.value
        return Candle(
            self.symbol_id,
            self.minute_ns,
            first.open,
            max(self.high, newer.high),
            min(self.low, newer.low),
            last.close,
            self.volume + newer.volume,
            self.trade_count + newer.trade_count,
            value,
            first.first,
            last.last,
        )
