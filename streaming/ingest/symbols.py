"""Symbol resolution for the ingest path: symbol ↔ id, and declaring a provider's symbols.

The map holds every row of ``symbols`` (a few thousand at most), refreshed by the pipeline
now and then, so resolving a print is a dict lookup. A print for a symbol that is neither in
the table nor declared by its provider is bad input (``unknown_symbol``), not a reason to
create a junk row. A provider declares the symbols it serves (``Provider.symbols``), with
market metadata where it knows better than the defaults (``Provider.symbol_info``: replay of
a crypto file → market '24/7', timezone UTC); new ones are inserted, existing ones kept
unless the metadata says ``"update": True`` (an explicit ``--market`` on the command line).
A venue's order increments (``price_increment``, ``qty_increment``, ``min_order_qty``) are
the venue's to know: when given they are written on new and existing rows alike.
A provider of an Alpaca equity feed fixes it as the feed of its stock symbols that have
none; the map keeps each symbol's fixed feed for intake's ``feed_mismatch`` check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import psycopg

from core.contracts import EQUITY_FEEDS
from storage.symbols import fix_equity_feed, guess_asset_type, guess_market

log = logging.getLogger(__name__)

_INSERT = """
insert into symbols (symbol, asset_type, provider, market, timezone, row_size)
values (%s, %s, %s, %s, %s, %s)
on conflict (symbol) do nothing
"""
INCREMENTS = ("price_increment", "qty_increment", "min_order_qty")
_INCREMENTS = """
update symbols set price_increment = coalesce(%s, price_increment),
    qty_increment = coalesce(%s, qty_increment), min_order_qty = coalesce(%s, min_order_qty),
    updated_at = now()
where symbol = %s
    and (price_increment, qty_increment, min_order_qty) is distinct from
        (coalesce(%s, price_increment), coalesce(%s, qty_increment), coalesce(%s, min_order_qty))
"""
_UPDATE = """
update symbols set market = %s, timezone = %s, asset_type = %s, updated_at = now()
where symbol = %s and (market, timezone, asset_type) is distinct from (%s, %s, %s)
"""


def default_meta(symbol: str) -> dict[str, object]:
    """Metadata for a declared symbol nobody seeded: the storage layer's one guess."""
    asset = guess_asset_type(symbol)
    market, timezone = guess_market(symbol, asset)
    return {"asset_type": asset.value, "market": market, "timezone": timezone, "row_size": 0.01}


class SymbolMap:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._feeds: dict[str, str] = {}

    def get(self, symbol: str) -> int | None:
        return self._ids.get(symbol)

    def name(self, symbol_id: int) -> str:
        return self._names.get(symbol_id, str(symbol_id))

    def equity_feed(self, symbol: str) -> str | None:
        """The Alpaca equity feed the symbol is fixed to (None: not fixed yet)."""
        return self._feeds.get(symbol)

    def load(self, conn: psycopg.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute("select symbol, id, equity_feed from symbols")
            rows = cur.fetchall()
        self._ids = {str(s): int(i) for s, i, _ in rows}
        self._names = {i: s for s, i in self._ids.items()}
        self._feeds = {str(s): str(f) for s, _, f in rows if f is not None}

    def declare(
        self,
        conn: psycopg.Connection,
        provider: str,
        symbols: Iterable[str],
        info: Mapping[str, Mapping[str, object]],
        feed: str | None = None,
    ) -> None:
        """Insert the provider's symbols nobody stored yet (updating market metadata where
        ``info`` says so) and, for an Alpaca equity ``feed``, fix it as the feed of its
        stock symbols that have none yet."""
        wanted = sorted({*symbols, *info})  # sorted: concurrent declarers lock in one order
        rows, updates, increments = [], [], []
        for sym in wanted:
            meta = {**default_meta(sym), **info.get(sym, {})}
            rows.append((sym, meta["asset_type"], provider, meta["market"], meta["timezone"],
                         meta["row_size"]))  # fmt: skip
            if meta.get("update"):
                m, tz, at = meta["market"], meta["timezone"], meta["asset_type"]
                updates.append((m, tz, at, sym, m, tz, at))
            steps = tuple(meta.get(k) for k in INCREMENTS)
            if any(v is not None for v in steps):
                increments.append((*steps, sym, *steps))
        if rows:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_INSERT, rows)
                if updates:
                    cur.executemany(_UPDATE, updates)
                if increments:
                    cur.executemany(_INCREMENTS, increments)
        if feed in EQUITY_FEEDS:
            refused = fix_equity_feed(conn, wanted, feed)
            if refused:
                log.error(
                    "%s: %s keep their equity feed (%s); their %s prints are refused as "
                    "feed_mismatch so no profile mixes two feeds (docs/history.md)",
                    provider,
                    ", ".join(sorted(refused)),
                    ", ".join(sorted(set(refused.values()))),
                    feed,
                )
        self.load(conn)
