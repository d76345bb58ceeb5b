"""What ingest declares for an Alpaca crypto pair before its first print
(docs/trading-safety.md, docs/providers.md).

- its order steps, from the trading API's ``GET /v2/assets/{pair}`` (the pair's slash
  URL-encoded): ``price_increment``, ``min_trade_increment`` and ``min_order_size`` become
  ``symbols.price_increment``, ``qty_increment`` and ``min_order_qty``;
- its profile bin, from the price of its latest trade (``GET
  /v1beta3/crypto/us/latest/trades``) by the rule new symbols follow
  (``storage.symbols.row_size_for_price``): BTC at 60,000 gets 1, a 0.0014 pair 1e-7.

A lookup that fails leaves the defaults (the asset rule of ``analytics/increments.py``, and
the default bin) and is logged: the stream never waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from core.settings import Settings
from storage.symbols import row_size_for_price
from streaming.venues.alpaca.execution import make_client
from streaming.venues.alpaca.parsing import describe_error

log = logging.getLogger(__name__)

# /v2/assets field → symbols column
INCREMENT_FIELDS = {
    "price_increment": "price_increment",
    "min_trade_increment": "qty_increment",
    "min_order_size": "min_order_qty",
}


def increments_of(asset: Mapping[str, Any]) -> dict[str, float]:
    """The ``symbols`` increment columns of one ``/v2/assets`` object (strings → floats);
    a missing or unusable field is left out."""
    out: dict[str, float] = {}
    for field, column in INCREMENT_FIELDS.items():
        try:
            value = float(asset.get(field))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if value > 0 and value != float("inf"):
            out[column] = value
    return out


def crypto_symbol_info(settings: Settings, pairs: Sequence[str]) -> dict[str, dict[str, object]]:
    """Per pair, the increments and row size found (blocking: run it in a thread)."""
    info: dict[str, dict[str, object]] = {pair: {} for pair in pairs}
    try:
        trading = make_client(settings)
        for pair in pairs:
            asset = trading.get(f"/assets/{quote(pair, safe='')}")
            if isinstance(asset, dict):
                info[pair].update(increments_of(asset))
    except Exception as exc:  # any failure: the defaults hold, the stream goes on
        log.warning("alpaca_ws: crypto increments not read (%s)", describe_error(exc))
    try:
        from alpaca.data.historical import CryptoHistoricalDataClient

        assert settings.alpaca_api_key is not None and settings.alpaca_secret_key is not None
        data = CryptoHistoricalDataClient(
            settings.alpaca_api_key.get_secret_value(),
            settings.alpaca_secret_key.get_secret_value(),
            raw_data=True,
            url_override=settings.alpaca_data_url,
        )
        answer = data.get("/crypto/us/latest/trades", {"symbols": ",".join(pairs)})
        trades = answer.get("trades", {}) if isinstance(answer, dict) else {}
        for pair in pairs:
            price = (trades.get(pair) or {}).get("p")
            if isinstance(price, int | float) and price > 0:
                info[pair]["row_size"] = row_size_for_price(float(price))
    except Exception as exc:
        log.warning("alpaca_ws: latest crypto prices not read (%s)", describe_error(exc))
    return info
