"""Alerts published on the ``alerts`` channel: LVN proximity and aggressive flow.

LVN proximity: the nearest low-volume node of the session or composite profile within
``ENGINE_LVN_ALERT_PCT`` percent of the price, with direction (UP when the node is above
the price, so price would have to rise to reach it; DOWN when below) and distance.
Aggressive flow: the score of ``analytics.aggressive_flow`` reaching the alert threshold.
Both fire once per approach (``OnceLatch``): an alert re-arms only after price leaves
the zone (or the score drops below the threshold). The footprint alerts are in
``footprint_alerts.py``; every alert type is described in docs/alerts.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.aggressive_flow import DIRECTION_NAMES, intensity
from strategies.snapshot import Metrics, Snapshot, Universe, json_number


@dataclass(frozen=True)
class LvnProximity:
    lvn: float  # the node's centre price
    low: float
    high: float
    horizon: str  # session | composite
    direction: str  # UP: the node is above the price; DOWN: below
    distance: float  # lvn − price, in price units (signed)
    distance_pct: float  # |lvn − price| / lvn × 100


def nodes(raw: object) -> list[tuple[float, float, float]]:
    """Normalise a profile's ``lvns`` JSON to (price, low, high) tuples, skipping junk."""
    return list(_nodes(raw))


def _nodes(raw: object) -> Iterable[tuple[float, float, float]]:
    """(price, low, high) of each node; tolerates bare prices (an older row format)."""
    if not isinstance(raw, list):
        return
    for node in raw:
        if isinstance(node, tuple) and len(node) == 3:  # already normalised (the reader)
            yield node
            continue
        if isinstance(node, Mapping):
            price = node.get("price")
            low, high = node.get("low", price), node.get("high", price)
        else:
            price = low = high = node
        try:
            # untrusted input: float() raises on what it cannot read, handled below
            p, lo, hi = float(price), float(low), float(high)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(p) and p > 0:
            yield p, lo, hi


def nearest_lvn(
    price: float, nodes_by_horizon: Mapping[str, object], max_pct: float
) -> LvnProximity | None:
    """The nearest LVN within ``max_pct`` % of ``price`` over every horizon, or None."""
    if not math.isfinite(price) or price <= 0:
        return None
    best: LvnProximity | None = None
    for horizon, raw in nodes_by_horizon.items():
        for lvn, low, high in _nodes(raw):
            pct = abs(price - lvn) / lvn * 100.0
            if pct > max_pct or (best is not None and pct >= best.distance_pct):
                continue
            best = LvnProximity(
                lvn=lvn,
                low=low,
                high=high,
                horizon=horizon,
                direction="UP" if price < lvn else "DOWN",
                distance=lvn - price,
                distance_pct=pct,
            )
    return best


class OnceLatch:
    """Fire once per approach: ``update(key, zone)`` is True when ``zone`` (what the
    symbol is near now, or None) is set and differs from the zone that last fired; None
    re-arms."""

    def __init__(self) -> None:
        self._current: dict[Any, Any] = {}

    def update(self, key: Any, zone: Any) -> bool:
        previous = self._current.get(key)
        if zone is None:
            self._current.pop(key, None)
            return False
        self._current[key] = zone
        return zone != previous


def lvn_alerts(
    snap: Snapshot, metrics: Metrics, now: datetime, latch: OnceLatch, pct: float
) -> list[dict[str, Any]]:
    """The LVN-proximity alerts due now (``pct``: ``ENGINE_LVN_ALERT_PCT``)."""
    out = []
    for k, symbol in enumerate(snap.universe.symbols):
        near = nearest_lvn(
            float(metrics.price[k]),
            {"session": snap.session.lvns[k], "composite": snap.composite.lvns[k]},
            pct,
        )
        zone = None if near is None else round(near.lvn, 8)
        if latch.update(symbol, zone) and near is not None:
            out.append(
                {
                    "type": "lvn",
                    "symbol": symbol,
                    "time": now.isoformat(),
                    "price": float(metrics.price[k]),
                    "lvn": near.lvn,
                    "low": near.low,
                    "high": near.high,
                    "horizon": near.horizon,
                    "direction": near.direction,
                    "distance": round(near.distance, 8),
                    "distance_pct": round(near.distance_pct, 6),
                }
            )
    return out


def flow_alerts(
    universe: Universe, metrics: Metrics, now: datetime, latch: OnceLatch, threshold: float
) -> list[dict]:
    """The aggressive-flow alerts due now (``threshold``: ``ENGINE_AGGRESSION_ALERT_SCORE``)."""
    out = []
    for k, symbol in enumerate(universe.symbols):
        score = float(metrics.aggression[k])
        direction = DIRECTION_NAMES[int(metrics.direction[k])]
        zone = direction if score >= threshold else None
        if latch.update(symbol, zone):
            out.append(
                {
                    "type": "aggressive_flow",
                    "symbol": symbol,
                    "time": now.isoformat(),
                    "score": score,
                    "direction": direction,
                    "intensity": intensity(score),
                    "buy_pressure": json_number(metrics.buy_pressure[k]),
                    "sell_pressure": json_number(metrics.sell_pressure[k]),
                    "cvd_momentum": float(metrics.cvd_momentum[k]),
                }
            )
    return out
