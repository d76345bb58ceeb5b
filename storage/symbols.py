"""Symbol → id lookup with a process-local cache; unknown symbols are created on first use."""

from __future__ import annotations

import math
from collections.abc import Iterable

import psycopg
from psycopg.pq import TransactionStatus

from core.contracts import AssetType

# bases that make a "<BASE>USD" symbol crypto rather than a currency pair
_CRYPTO_BASES = frozenset(
    {
        "BTC",
        "ETH",
        "SOL",
        "XRP",
        "DOGE",
        "ADA",
        "LTC",
        "BCH",
        "DOT",
        "AVAX",
        "LINK",
        "MATIC",
        "UNI",
        "XLM",
        "ATOM",
        "SHIB",
        "TRX",
        "USDT",
        "USDC",
    }
)
# ISO currencies whose pairs are quoted as FX (IG); a pair needs both sides in this set
CURRENCIES = frozenset(
    {
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CHF",
        "AUD",
        "CAD",
        "NZD",
        "SEK",
        "NOK",
        "DKK",
        "HKD",
        "SGD",
        "ZAR",
        "MXN",
        "TRY",
        "PLN",
        "CNH",
        "CZK",
        "HUF",
        "ILS",
    }
)


def is_slash_pair(symbol: str) -> bool:
    """``BASE/QUOTE`` with both sides alphanumeric: a pair as Alpaca (crypto) or a user (FX)
    writes it."""
    base, slash, quote = symbol.partition("/")
    return bool(slash) and base.isalnum() and quote.isalnum()


def stored_symbol(name: str) -> str:
    """The one name a symbol is stored and shown under: upper case, and a pair without its
    slash (``BTC/USD`` is ``BTCUSD``, the name the demo, the seed and replay use;
    docs/history.md). A symbol is a path segment of the dashboard, where a slash would
    split it."""
    upper = name.strip().upper()
    return upper.replace("/", "") if is_slash_pair(upper) else upper


def is_fx_pair(symbol: str) -> bool:
    """``EURUSD`` / ``EUR/USD``: two ISO currencies (so ``BTCUSD`` is not FX)."""
    bare = symbol.upper().replace("/", "")
    return len(bare) == 6 and bare[:3] in CURRENCIES and bare[3:] in CURRENCIES


def guess_asset_type(symbol: str) -> AssetType:
    """A sensible ``asset_type`` for a symbol nobody seeded (the row can be edited later).
    A ``BASE/QUOTE`` pair that is not two currencies is crypto, as Alpaca writes its pairs."""
    if is_slash_pair(symbol.upper()) and not is_fx_pair(symbol):
        return AssetType.CRYPTO
    upper = symbol.upper().replace("/", "").replace("-", "")
    for quote in ("USDT", "USDC", "USD", "BTC", "EUR"):
        if upper.endswith(quote) and upper[: -len(quote)] in _CRYPTO_BASES:
            return AssetType.CRYPTO
    if upper.endswith(("USDT", "USDC")) and len(upper) > 5:
        return AssetType.CRYPTO
    if is_fx_pair(upper):
        return AssetType.FOREX
    if symbol.startswith("^"):
        return AssetType.INDEX
    if len(symbol) > 40:  # Polymarket token / condition ids
        return AssetType.BINARY_OPTION
    return AssetType.STOCK


def guess_market(symbol: str, asset_type: AssetType) -> tuple[str, str]:
    """(market, timezone) for a symbol nobody seeded: the calendar its sessions follow.

    Markets are those ``analytics.sessions`` supports. Crypto, FX and Polymarket tokens
    trade around the clock (the UTC day); a ``.L`` share is on the LSE; else US equities.
    """
    if asset_type in (AssetType.CRYPTO, AssetType.FOREX, AssetType.BINARY_OPTION):
        return "24/7", "UTC"
    if symbol.upper().endswith(".L"):
        return "XLON", "Europe/London"
    return "XNYS", "America/New_York"


# Row size of a new symbol from its price: the power of ten a ten-thousandth of the price
# falls in, so one bin is 0.01 %–0.1 % of the price (AAPL at 180 → 0.01, ETH at 2,400 → 0.1,
# BTC at 60,000 → 1, XRP at 0.29 → 0.00001, a pair at 0.0014 → 0.0000001). Documented in
# docs/signal-marts.md; an explicit row size (`marketflow replay --row-size`) wins.
ROW_SIZE_PRICE_FRACTION_EXPONENT = 4
DEFAULT_ROW_SIZE = 0.01
# volume_profile.price_level is numeric(20, 8): a finer bin could not be stored
MIN_ROW_SIZE_EXPONENT = -8


def row_size_for_price(price: float) -> float:
    """The profile bin for a symbol trading near ``price`` (DEFAULT_ROW_SIZE if unusable)."""
    if not math.isfinite(price) or price <= 0:
        return DEFAULT_ROW_SIZE
    exponent = max(
        MIN_ROW_SIZE_EXPONENT, math.floor(math.log10(price)) - ROW_SIZE_PRICE_FRACTION_EXPONENT
    )
    # through the decimal literal: exactly the float nearest 10^exponent
    return float(f"1e{exponent}")


class SymbolCache:
    """Resolves symbols to ``symbols.id``; ids never change, so entries never expire.

    ``ids(...)`` resolves many at once in two round trips at most: one ``select`` for the
    unknown ones, one ``insert ... on conflict do nothing`` for the missing ones (safe when
    several writers create the same symbol concurrently).
    """

    def __init__(self, conn: psycopg.Connection, *, provider: str | None = None) -> None:
        self._conn = conn
        self._provider = provider
        self._ids: dict[str, int] = {}

    @property
    def cached(self) -> dict[str, int]:
        """The ids known without a query (read-only by convention; ids never change)."""
        return self._ids

    def forget(self) -> None:
        """Drop every cached id (after a rollback that may have undone a creation)."""
        self._ids.clear()

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._ids

    def get(self, symbol: str) -> int:
        return self.ids([symbol])[symbol]

    def ids(self, symbols: Iterable[str]) -> dict[str, int]:
        wanted = {s for s in symbols if s}
        missing = [s for s in wanted if s not in self._ids]
        if missing:
            self._load(missing)
            still = [s for s in missing if s not in self._ids]
            if still:
                # created inside a caller's transaction, an id may vanish with a rollback:
                # hand it out but cache it only once committed
                tentative = not (
                    self._conn.autocommit
                    and self._conn.info.transaction_status == TransactionStatus.IDLE
                )
                self._create(still)
                self._load(still)
                result = {s: self._ids[s] for s in wanted}
                if tentative:
                    for s in still:
                        self._ids.pop(s, None)
                return result
        return {s: self._ids[s] for s in wanted}

    def _load(self, symbols: list[str]) -> None:
        with self._conn.cursor() as cur:
            cur.execute("select symbol, id from symbols where symbol = any(%s)", (symbols,))
            self._ids.update({str(s): int(i) for s, i in cur.fetchall()})

    def _create(self, symbols: list[str]) -> None:
        rows = []
        for s in sorted(symbols):  # sorted: concurrent creators lock rows in one order
            kind = guess_asset_type(s)
            rows.append((s, kind.value, self._provider, *guess_market(s, kind)))
        # a savepoint inside a caller's transaction, its own transaction in autocommit mode
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                "insert into symbols (symbol, asset_type, provider, market, timezone) "
                "values (%s, %s, %s, %s, %s) on conflict (symbol) do nothing",
                rows,
            )


def symbol_ids(conn: psycopg.Connection, symbols: Iterable[str]) -> dict[str, int]:
    """One-off lookup (creating unknown symbols); long-lived code keeps a ``SymbolCache``."""
    return SymbolCache(conn).ids(symbols)


def fix_equity_feed(conn: psycopg.Connection, symbols: Iterable[str], feed: str) -> dict[str, str]:
    """Fix ``feed`` as the equity feed of the stock ``symbols`` that have none yet; returns
    the symbols fixed to another feed, with theirs (docs/history.md)."""
    names = sorted(set(symbols))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "update symbols set equity_feed = %s, updated_at = now() "
            "where symbol = any(%s) and equity_feed is null and asset_type = 'stock'",
            (feed, names),
        )
        cur.execute(
            "select symbol, equity_feed from symbols where symbol = any(%s) "
            "and equity_feed is not null and equity_feed <> %s",
            (names, feed),
        )
        return {str(s): str(f) for s, f in cur.fetchall()}
