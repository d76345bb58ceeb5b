"""Which symbols a history backfill fetches, under which names (docs/history.md).

Names come as a user writes them (``AAPL``, ``BTC/USD``, ``btcusd``) and are stored as
``storage.symbols.stored_symbol`` says (``BTCUSD``). A symbol nobody stored yet is created
with its calendar (crypto pairs trade 24/7 on the UTC day; a slash marks a pair even when
its base is not one marketflow knows). Stocks go to the stocks endpoint with the equity
feed, which is fixed for the symbol if it had none; a stock fixed to another feed is refused before
anything is fetched, as is a symbol Alpaca does not trade (FX, indices, Polymarket).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from core.contracts import AssetType
from storage.symbols import (
    fix_equity_feed,
    guess_asset_type,
    guess_market,
    is_fx_pair,
    is_slash_pair,
    stored_symbol,
)
from streaming.venues.alpaca.parsing import alpaca_symbol
from streaming.venues.alpaca.rest import AssetClass

PROVIDER = "alpaca"  # symbols.provider of the symbols a backfill creates


@dataclass(frozen=True)
class HistorySymbol:
    symbol: str  # the stored name
    symbol_id: int
    alpaca: str  # Alpaca's name
    asset_class: AssetClass


@dataclass
class Resolved:
    symbols: list[HistorySymbol] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # stored name → why
    created: set[str] = field(default_factory=set)  # rows this call inserted


def stored_names(names: Sequence[str]) -> list[str]:
    """Stored names of ``names``, each once, in the order given."""
    return list(dict.fromkeys(stored_symbol(n) for n in names if n.strip()))


def resolve_symbols(conn: psycopg.Connection, names: Sequence[str], feed: str) -> Resolved:
    """The symbols to fetch (created where missing, equity feed fixed where unset), and the
    ones refused with the reason. One transaction; ``conn`` may be in autocommit mode."""
    wanted = stored_names(names)
    pairs = {stored_symbol(n) for n in names if is_slash_pair(n.upper()) and not is_fx_pair(n)}
    resolved = Resolved()
    rows = []
    for symbol in wanted:
        kind = AssetType.CRYPTO if symbol in pairs else guess_asset_type(symbol)
        market, timezone = guess_market(symbol, kind)
        rows.append((symbol, kind.value, PROVIDER, market, timezone))
    with conn.transaction(), conn.cursor() as cur:
        for row in sorted(rows):  # sorted: concurrent creators lock rows in one order
            cur.execute(
                "insert into symbols (symbol, asset_type, provider, market, timezone) "
                "values (%s, %s, %s, %s, %s) on conflict (symbol) do nothing returning symbol",
                row,
            )
            if cur.fetchone() is not None:
                resolved.created.add(row[0])
        found = {
            str(s): (int(i), str(a))
            for s, i, a in cur.execute(
                "select symbol, id, asset_type from symbols where symbol = any(%s)", (wanted,)
            ).fetchall()
        }
        stocks = [s for s in wanted if found[s][1] == AssetType.STOCK]
        mismatched = fix_equity_feed(conn, stocks, feed) if stocks else {}
    for symbol in wanted:
        symbol_id, asset_type = found[symbol]
        if symbol in mismatched:
            resolved.refused[symbol] = (
                f"its ticks come from the {mismatched[symbol]} feed (symbols.equity_feed); "
                f"{feed} prints would mix two feeds in its profiles (docs/history.md)"
            )
        elif asset_type in (AssetType.STOCK, AssetType.CRYPTO):
            asset_class = AssetClass.STOCKS if asset_type == AssetType.STOCK else AssetClass.CRYPTO
            alpaca = alpaca_symbol(symbol) if asset_class is AssetClass.CRYPTO else symbol
            resolved.symbols.append(HistorySymbol(symbol, symbol_id, alpaca, asset_class))
        else:
            resolved.refused[symbol] = f"Alpaca has no trades for a {asset_type} symbol"
    return resolved
