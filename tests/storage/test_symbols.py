"""Symbol ids: cached look-ups, creation on first use with a sensible asset type."""

from __future__ import annotations

import psycopg
import pytest

from core.contracts import AssetType
from storage.db import connect
from storage.symbols import SymbolCache, guess_asset_type


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTCUSD", AssetType.CRYPTO),
        ("ETHUSDT", AssetType.CRYPTO),
        ("BTC-USD", AssetType.CRYPTO),
        ("PEPEUSDT", AssetType.CRYPTO),
        ("EURUSD", AssetType.FOREX),
        ("GBPJPY", AssetType.FOREX),
        ("AAPL", AssetType.STOCK),
        ("VOD.L", AssetType.STOCK),
        ("^FTSE", AssetType.INDEX),
        ("7" * 77, AssetType.BINARY_OPTION),
    ],
)
def test_guess_asset_type(symbol: str, expected: AssetType) -> None:
    assert guess_asset_type(symbol) is expected


def test_cache_creates_once_and_reuses(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        cache = SymbolCache(conn, provider="replay")
        ids = cache.ids(["AAPL", "SOLUSD", "SOLUSD"])
        assert set(ids) == {"AAPL", "SOLUSD"}
        row = conn.execute(
            "select asset_type, market, timezone, provider from symbols where symbol = 'SOLUSD'"
        ).fetchone()
        assert row == ("crypto", "24/7", "UTC", "replay")
        # a second cache (another process) finds the same id; the first answers from memory
        assert SymbolCache(conn).get("SOLUSD") == ids["SOLUSD"]
        conn.execute("delete from symbols where symbol = 'SOLUSD'")
        assert cache.get("SOLUSD") == ids["SOLUSD"]  # cached: ids never change
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            # what a stale id would do in ticks: the integrity check refuses it
            conn.execute(
                "insert into ticks (symbol_id, ts, trade_id, price, size) "
                "values (%s, now(), 'x', 1, 1)",
                (ids["SOLUSD"],),
            )


def test_created_symbols_get_their_markets_session_calendar(db_url: str) -> None:
    """Found in review: every non-crypto symbol was created on XNYS/America/New_York, so an
    unseeded LSE share (IG's ``BARC.L``) had its sessions, CVD resets and display time from
    New York, and FX pairs / Polymarket tokens (which trade around the clock) too."""
    from analytics.sessions import SUPPORTED_MARKETS, market_timezone

    token = "9" * 77
    with connect(db_url, autocommit=True) as conn:
        SymbolCache(conn, provider="ig").ids(["BARC.L", "GBPUSD", "NVDA", token])
        rows = dict(
            (sym, (market, tz))
            for sym, market, tz in conn.execute(
                "select symbol, market, timezone from symbols where symbol = any(%s)",
                (["BARC.L", "GBPUSD", "NVDA", token],),
            ).fetchall()
        )
    assert rows["BARC.L"] == ("XLON", "Europe/London")
    assert rows["NVDA"] == ("XNYS", "America/New_York")
    assert rows["GBPUSD"] == ("24/7", "UTC")
    assert rows[token] == ("24/7", "UTC")
    for market, tz in rows.values():  # every market is one the session code knows
        assert market in SUPPORTED_MARKETS and market_timezone(market) == tz
