"""Which symbols a backfill fetches under which names: crypto pairs stored without the
slash, new symbols created with their calendar, the equity feed fixed, refusals."""

from __future__ import annotations

import psycopg
import pytest

from storage.symbols import stored_symbol
from streaming.history.symbols import resolve_symbols
from streaming.venues.alpaca.parsing import alpaca_symbol
from streaming.venues.alpaca.rest import AssetClass


@pytest.mark.parametrize(
    ("written", "stored", "alpaca"),
    [
        ("BTC/USD", "BTCUSD", "BTC/USD"),
        ("btc/usd", "BTCUSD", "BTC/USD"),
        ("BTCUSD", "BTCUSD", "BTC/USD"),
        ("ETH/USDT", "ETHUSDT", "ETH/USDT"),
        ("ETH/BTC", "ETHBTC", "ETH/BTC"),
        ("USDT/USD", "USDTUSD", "USDT/USD"),
    ],
)
def test_a_pair_has_one_stored_name_and_alpacas(written: str, stored: str, alpaca: str) -> None:
    assert stored_symbol(written) == stored
    assert alpaca_symbol(stored) == alpaca


def test_resolve_creates_fixes_and_refuses(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update symbols set equity_feed = 'sip' where symbol = 'MSFT'")
        resolved = resolve_symbols(
            conn, ["aapl", "MSFT", "PEPE/USD", "BTC/USD", "EUR/USD", "AAPL"], "iex"
        )
        rows = dict(
            (s, (a, m, f))
            for s, a, m, f in conn.execute(
                "select symbol, asset_type, market, equity_feed from symbols"
                " where symbol in ('AAPL', 'MSFT', 'PEPEUSD', 'BTCUSD', 'EURUSD')"
            ).fetchall()
        )
    got = {s.symbol: (s.alpaca, s.asset_class) for s in resolved.symbols}
    assert got == {
        "AAPL": ("AAPL", AssetClass.STOCKS),
        "PEPEUSD": ("PEPE/USD", AssetClass.CRYPTO),  # a slash makes an unknown base a pair
        "BTCUSD": ("BTC/USD", AssetClass.CRYPTO),  # the seeded row, not a second one
    }
    assert set(resolved.refused) == {"MSFT", "EURUSD"}
    assert "sip" in resolved.refused["MSFT"] and "forex" in resolved.refused["EURUSD"]
    assert resolved.created == {"PEPEUSD", "EURUSD"}
    assert rows["PEPEUSD"] == ("crypto", "24/7", None)
    assert rows["AAPL"][2] == "iex" and rows["MSFT"][2] == "sip"  # fixed, and kept
