"""Bad-input rules (docs/architecture.md): pure checks that name the reason a print is skipped.

Reasons are stable strings (they are the ``ingest_rejects.reason`` keys). A check never
raises on odd input: anything it cannot make sense of is ``malformed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.events import AMENDMENT_KINDS, Bar, Quote, Trade, TradeAmendment
from core.timestamps import NS

MALFORMED = "malformed"
NOT_FINITE = "not_finite"
BAD_PRICE = "non_positive_price"
BAD_SIZE = "bad_size"
OUT_OF_WINDOW = "timestamp_out_of_window"
UNKNOWN_SYMBOL = "unknown_symbol"
BAD_BAR = "inconsistent_bar"
BAD_AMENDMENT = "malformed_amendment"

# replay's sanity window: recorded history is fine, but not before this or in the future
HISTORY_START_NS = 631_152_000 * NS  # 1990-01-01


@dataclass(frozen=True)
class Window:
    """Accepted timestamps relative to ``now``: [now - max_age, now + max_ahead]."""

    max_age_s: float
    max_ahead_s: float

    def bounds(self, now_ns: int) -> tuple[int, int]:
        low = HISTORY_START_NS if math.isinf(self.max_age_s) else now_ns - int(self.max_age_s * NS)
        return max(low, HISTORY_START_NS), now_ns + int(self.max_ahead_s * NS)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


def ts_ns_of(value: object) -> int | None:
    """ns since the epoch of an aware datetime; None when it is not one."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        return None
    try:
        return int(value.timestamp()) * NS + value.microsecond * 1000
    except (OverflowError, OSError, ValueError):
        return None


def check_trade(
    trade: object, now_ns: int, window: Window, *, zero_size_ok: bool = False
) -> str | None:
    """The reason ``trade`` is rejected, or None when it is a valid print."""
    if not isinstance(trade, Trade):
        return MALFORMED
    if not isinstance(trade.symbol, str) or not trade.symbol.strip():
        return MALFORMED
    ts = ts_ns_of(trade.ts)
    price, size = _number(trade.price), _number(trade.size)
    if ts is None or price is None or size is None:
        return MALFORMED
    if trade.side not in (None, 1, -1) or not isinstance(trade.conditions, (tuple, list)):
        return MALFORMED
    if trade.trade_id is not None and not isinstance(trade.trade_id, (str, int)):
        return MALFORMED
    if not (math.isfinite(price) and math.isfinite(size)):
        return NOT_FINITE
    if price <= 0:
        return BAD_PRICE
    if size < 0 or (size == 0 and not zero_size_ok):
        return BAD_SIZE
    low, high = window.bounds(now_ns)
    if not low <= ts <= high:
        return OUT_OF_WINDOW
    return None


def check_bar(bar: object, now_ns: int, window: Window) -> str | None:
    if not isinstance(bar, Bar) or not isinstance(bar.symbol, str) or not bar.symbol.strip():
        return MALFORMED
    ts = ts_ns_of(bar.ts)
    values = [_number(v) for v in (bar.open, bar.high, bar.low, bar.close, bar.volume)]
    if ts is None or any(v is None for v in values):
        return MALFORMED
    # none is None (checked above)
    o, h, low_, c, v = (float(x) for x in values)  # type: ignore[arg-type]
    if not all(math.isfinite(x) for x in (o, h, low_, c, v)):
        return NOT_FINITE
    if min(o, h, low_, c) <= 0:
        return BAD_PRICE
    if v < 0:
        return BAD_SIZE
    if not (low_ <= min(o, c) and h >= max(o, c)):
        return BAD_BAR
    low, high = window.bounds(now_ns)
    if not low <= ts <= high:
        return OUT_OF_WINDOW
    return None


def check_amendment(amendment: object) -> str | None:
    """The reason a correction or cancel is rejected, or None: it must name its symbol, the
    print it amends and, for a correction, a corrected print with a finite positive price
    and size (a cancel's reported price and size are informative only)."""
    a = amendment
    if not isinstance(a, TradeAmendment) or a.kind not in AMENDMENT_KINDS:
        return BAD_AMENDMENT
    if not isinstance(a.symbol, str) or not a.symbol.strip() or ts_ns_of(a.ts) is None:
        return BAD_AMENDMENT
    if not isinstance(a.trade_id, str) or not a.trade_id:
        return BAD_AMENDMENT
    if a.kind != "correction":
        return None if a.corrected_trade_id is None else BAD_AMENDMENT
    price, size = _number(a.corrected_price), _number(a.corrected_size)
    if not isinstance(a.corrected_trade_id, str) or not a.corrected_trade_id:
        return BAD_AMENDMENT
    if price is None or size is None or not (math.isfinite(price) and math.isfinite(size)):
        return BAD_AMENDMENT
    return None if price > 0 and size > 0 else BAD_AMENDMENT


def check_quote(quote: object) -> str | None:
    if not isinstance(quote, Quote) or not isinstance(quote.symbol, str):
        return MALFORMED
    bid, ask = _number(quote.bid), _number(quote.ask)
    if bid is None or ask is None or ts_ns_of(quote.ts) is None:
        return MALFORMED
    if not (math.isfinite(bid) and math.isfinite(ask)):
        return NOT_FINITE
    if bid <= 0 or ask <= 0:
        return BAD_PRICE
    return None


def clean_quote(value: object) -> float:
    """A bid/ask to store: NaN (NULL) unless a finite positive number (a venue's 0 = none)."""
    v = _number(value)
    return v if v is not None and math.isfinite(v) and v > 0 else math.nan


def check_columns(
    ts_ns: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    now_ns: int,
    window: Window,
    *,
    zero_size_ok: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Vectorised ``check_trade`` for a batch: (keep mask, reason → rejected row indexes)."""
    reasons: dict[str, np.ndarray] = {}
    bad = np.zeros(ts_ns.shape[0], bool)

    def mark(reason: str, mask: np.ndarray) -> None:
        nonlocal bad
        new = mask & ~bad
        if new.any():
            reasons[reason] = np.flatnonzero(new)
            bad |= new

    with np.errstate(invalid="ignore"):
        mark(NOT_FINITE, ~(np.isfinite(price) & np.isfinite(size)))
        mark(BAD_PRICE, price <= 0)
        mark(BAD_SIZE, (size < 0) | ((size == 0) & (not zero_size_ok)))
    low, high = window.bounds(now_ns)
    mark(OUT_OF_WINDOW, (ts_ns < low) | (ts_ns > high))
    return ~bad, reasons
