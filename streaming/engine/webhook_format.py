"""An alert as a webhook body (docs/alerts.md): ``json`` posts the alert as published on
the ``alerts`` channel; ``slack`` posts ``{"text": …}`` and ``discord`` ``{"content": …}``
with one line a person reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

DISCORD_MAX = 2000  # characters Discord accepts in ``content``


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


_LINES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "lvn": lambda a: (
        f"{a['symbol']} near LVN {_num(a['lvn'])} ({a['horizon']}): price {_num(a['price'])},"
        f" {_num(a['distance_pct'])}% {'below' if a['direction'] == 'UP' else 'above'} it"
    ),
    "aggressive_flow": lambda a: (
        f"{a['symbol']} aggressive {a['direction']} flow: score {_num(a['score'])}"
        f" ({a['intensity']})"
    ),
    "stacked_imbalance": lambda a: (
        f"{a['symbol']} stacked {a['side']} imbalance: {a['rows']} rows (bar {a['bar']})"
    ),
    "vwap_band": lambda a: (
        f"{a['symbol']} touched the {a['band']} VWAP band ({_num(a['k'])} sd,"
        f" {_num(a['level'])}): price {_num(a['price'])}, VWAP {_num(a['vwap'])}"
    ),
    "big_print": lambda a: (
        f"{a['symbol']} big print: {_num(a['size'])} @ {_num(a['price'])}"
        f" ({a['side'] or 'unclassified'}) at {a['print_time']}"
    ),
}


def alert_text(alert: Mapping[str, Any]) -> str:
    """One line for a chat message; an alert of an unknown shape lists its fields."""
    try:
        return _LINES[str(alert.get("type"))](alert)
    except (KeyError, TypeError, ValueError):
        fields = ", ".join(f"{k}={v}" for k, v in alert.items() if k not in ("type", "symbol"))
        return f"{alert.get('symbol', '?')} {alert.get('type', 'alert')}: {fields}"


def webhook_body(fmt: str, alert: Mapping[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": alert_text(alert)}
    if fmt == "discord":
        return {"content": alert_text(alert)[:DISCORD_MAX]}
    return dict(alert)
