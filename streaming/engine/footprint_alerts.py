"""Footprint alerts on the ``alerts`` channel (docs/alerts.md): a stacked imbalance, a
touch of a session VWAP band and a big print, beside the LVN and aggressive-flow alerts
(``alerts.py``) and in their format: ``type``, ``symbol``, ``time`` and the values.

Each is latched (``OnceLatch``) on the event itself, so one event alerts once however many
ticks still see it: a stack on the bar (minute) that holds it, a band touch until price
is back inside the band, a big print on its own timestamp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from core.settings import Settings
from strategies.footprint import SIDE_NAMES, Footprint
from strategies.snapshot import Metrics, Universe, json_number
from streaming.engine.alerts import OnceLatch

SIDES = (("BUY", "stack_buy"), ("SELL", "stack_sell"))
# a big print older than this is not news: an engine starting up does not alert on the
# prints of the last quarter of an hour
BIG_PRINT_ALERT_AGE_S = 120.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def stacked_imbalance_alerts(
    universe: Universe, fp: Footprint, now: datetime, latch: OnceLatch, rows: int
) -> list[dict[str, Any]]:
    """A stack of at least ``rows`` rows (``ENGINE_STACKED_IMBALANCE_ALERT_ROWS``) on a
    side, once per bar that holds one."""
    out: list[dict[str, Any]] = []
    for side, name in SIDES:
        length, bucket = getattr(fp, name), getattr(fp, name + "_bucket")
        for k, symbol in enumerate(universe.symbols):
            hit = rows > 0 and length[k] >= rows and np.isfinite(bucket[k])
            zone = float(bucket[k]) if hit else None
            if latch.update((symbol, side), zone) and zone is not None:
                out.append(
                    {
                        "type": "stacked_imbalance",
                        "symbol": symbol,
                        "time": now.isoformat(),
                        "side": side,
                        "rows": int(length[k]),
                        "bar": _iso(zone),
                    }
                )
    return out


def vwap_band_alerts(
    universe: Universe, metrics: Metrics, fp: Footprint, now: datetime, latch: OnceLatch, k: float
) -> list[dict[str, Any]]:
    """Price at or beyond the session VWAP ± ``k``·sd (``ENGINE_VWAP_ALERT_SD``), once per
    touch: the latch re-arms when price is back inside the band."""
    out: list[dict[str, Any]] = []
    upper, lower = fp.vwap + k * fp.vwap_sd, fp.vwap - k * fp.vwap_sd
    for i, symbol in enumerate(universe.symbols):
        price = float(metrics.price[i])
        zone: str | None = None
        if k > 0 and np.isfinite(price) and np.isfinite(upper[i]) and fp.vwap_sd[i] > 0:
            zone = "upper" if price >= upper[i] else "lower" if price <= lower[i] else None
        if latch.update(symbol, zone) and zone is not None:
            out.append(
                {
                    "type": "vwap_band",
                    "symbol": symbol,
                    "time": now.isoformat(),
                    "band": zone,
                    "k": k,
                    "level": float(upper[i] if zone == "upper" else lower[i]),
                    "price": price,
                    "vwap": json_number(fp.vwap[i]),
                    "sd": json_number(fp.vwap_sd[i]),
                }
            )
    return out


def big_print_alerts(
    universe: Universe, fp: Footprint, now: datetime, latch: OnceLatch
) -> list[dict[str, Any]]:
    """The newest big print of each symbol, once per print (its timestamp), while it is
    younger than ``BIG_PRINT_ALERT_AGE_S``."""
    out: list[dict[str, Any]] = []
    for i, symbol in enumerate(universe.symbols):
        col = fp.last_big_print(i)
        zone = None if col is None else float(fp.big_ts[i, col])
        if zone is not None and now.timestamp() - zone > BIG_PRINT_ALERT_AGE_S:
            zone = None
        if latch.update(symbol, zone) and col is not None and zone is not None:
            out.append(
                {
                    "type": "big_print",
                    "symbol": symbol,
                    "time": now.isoformat(),
                    "print_time": _iso(zone),
                    "side": SIDE_NAMES[col],
                    "price": float(fp.big_price[i, col]),
                    "size": float(fp.big_size[i, col]),
                }
            )
    return out


class FootprintAlerts:
    """The three footprint alerts with their latches and settings."""

    def __init__(self, settings: Settings) -> None:
        self.rows = settings.engine_stacked_imbalance_alert_rows
        self.k = settings.engine_vwap_alert_sd
        self.prints = settings.engine_big_print_alerts
        self.stack_latch, self.band_latch, self.print_latch = OnceLatch(), OnceLatch(), OnceLatch()

    @property
    def enabled(self) -> bool:
        return self.rows > 0 or self.k > 0 or self.prints

    def due(
        self, universe: Universe, metrics: Metrics, fp: Footprint, now: datetime
    ) -> list[dict[str, Any]]:
        out = stacked_imbalance_alerts(universe, fp, now, self.stack_latch, self.rows)
        out += vwap_band_alerts(universe, metrics, fp, now, self.band_latch, self.k)
        if self.prints:
            out += big_print_alerts(universe, fp, now, self.print_latch)
        return out
