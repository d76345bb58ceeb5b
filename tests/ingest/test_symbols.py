"""Symbols a provider declares without seed rows get the calendar their sessions follow."""

from __future__ import annotations

import pytest

from streaming.ingest.symbols import default_meta


@pytest.mark.parametrize(
    ("symbol", "asset_type", "market", "timezone"),
    [
        ("AAPL", "stock", "XNYS", "America/New_York"),
        ("VOD.L", "stock", "XLON", "Europe/London"),
        ("BTCUSD", "crypto", "24/7", "UTC"),
        ("EURUSD", "forex", "24/7", "UTC"),  # not New York hours: FX trades round the clock
    ],
)
def test_default_meta_follows_the_storage_guess(
    symbol: str, asset_type: str, market: str, timezone: str
) -> None:
    meta = default_meta(symbol)
    assert (meta["asset_type"], meta["market"], meta["timezone"]) == (asset_type, market, timezone)
