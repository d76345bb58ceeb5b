"""Discovery into the database: upsert ``symbols`` and ``binary_markets`` from Gamma.

Each market is written in its own savepoint, so one bad row never aborts the others (no
aborted-transaction cascade). Symbols are ``PM:<slug>`` (Gamma slugs are unique),
disambiguated with the short condition id if ever taken, and never reassigned.

A negRisk basket is only an arbitrage over ALL outcomes of its event, so whenever a listing
shows part of a negRisk event the whole event is read (``/events``) and stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
import psycopg

from core.contracts import AssetType, Table
from core.events import Rejects
from streaming.venues.polymarket.parsing import (
    ParsedMarket,
    event_markets,
    parse_markets,
    symbol_for,
)
from streaming.venues.polymarket.rest import fetch_by_condition_ids, fetch_events, fetch_markets

log = logging.getLogger(__name__)

_UPSERT_SYMBOL = f"""
insert into {Table.SYMBOLS} (symbol, name, exchange, asset_type, provider, market, timezone,
                      row_size, active)
values (%s, %s, 'POLYMARKET', '{AssetType.BINARY_OPTION}', 'polymarket', '24/7', 'UTC', %s, %s)
on conflict (symbol) do update
   set name = excluded.name, active = excluded.active, row_size = excluded.row_size,
       updated_at = now()
returning id
"""

_UPSERT_MARKET = f"""
insert into {Table.BINARY_MARKETS} (symbol_id, market_id, event_id, event_slug, neg_risk,
       augmented, slug, yes_token_id, no_token_id, question, category, end_date, status,
       resolution, fee_rate, tick_size)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (market_id) do update
   set event_id = excluded.event_id, event_slug = excluded.event_slug,
       neg_risk = excluded.neg_risk, augmented = excluded.augmented, slug = excluded.slug,
       yes_token_id = excluded.yes_token_id, no_token_id = excluded.no_token_id,
       question = excluded.question, category = excluded.category,
       end_date = excluded.end_date, status = excluded.status,
       resolution = coalesce(excluded.resolution, {Table.BINARY_MARKETS}.resolution),
       fee_rate = excluded.fee_rate, tick_size = excluded.tick_size, updated_at = now()
"""


def _symbol_for_market(conn: psycopg.Connection, market: ParsedMarket) -> str:
    """A symbol no other market owns: keep an existing one, else slug, else slug+id."""
    row = conn.execute(
        f"select s.symbol from {Table.BINARY_MARKETS} m join {Table.SYMBOLS} s "
        "on s.id = m.symbol_id where m.market_id = %s",
        (market.market_id,),
    ).fetchone()
    if row:
        return row[0]
    candidate = market.symbol
    taken = conn.execute(
        f"select 1 from {Table.SYMBOLS} where symbol = %s", (candidate,)
    ).fetchone()
    return symbol_for(market.slug, market.market_id, disambiguate=True) if taken else candidate


def upsert_markets(
    conn: psycopg.Connection, markets: Iterable[ParsedMarket], rejects: Rejects | None = None
) -> dict[str, str]:
    """Upsert symbols + binary_markets; returns market_id → symbol of those written."""
    written: dict[str, str] = {}
    for market in markets:
        try:
            with conn.transaction():  # a savepoint: a failed row never aborts the rest
                symbol = _symbol_for_market(conn, market)
                inserted = conn.execute(
                    _UPSERT_SYMBOL,
                    (
                        symbol,
                        market.question[:500],
                        market.tick_size or 0.01,
                        market.status == "active",
                    ),
                ).fetchone()
                assert inserted is not None  # upsert … returning id: one row
                symbol_id = inserted[0]
                conn.execute(
                    _UPSERT_MARKET,
                    (
                        symbol_id,
                        market.market_id,
                        market.event_id,
                        market.event_slug,
                        market.neg_risk,
                        market.augmented,
                        market.slug,
                        market.yes_token_id,
                        market.no_token_id,
                        market.question,
                        market.category,
                        market.end_date,
                        market.status,
                        market.resolution,
                        market.fee_rate,
                        market.tick_size,
                    ),
                )
            written[market.market_id] = symbol
        except psycopg.Error as exc:
            log.warning("market %s not stored: %s", market.market_id, exc.__class__.__name__)
            if rejects is not None:
                rejects.add("db_error", f"{market.market_id}: {exc}")
    conn.commit()
    return written


@dataclass
class Discovery:
    markets: list[ParsedMarket]  # active markets found this run (after the category filter)
    written: dict[str, str]  # market_id → symbol upserted
    refreshed: int  # previously active markets re-read to mark closed / resolved
    rejects: Rejects


def discover(
    conn: psycopg.Connection,
    client: httpx.Client,
    base_url: str,
    fee_rates: Mapping[str, float],
    default_fee_rate: float = 0.0,
    *,
    category: str | None = None,
    limit: int | None = None,
    page_size: int = 100,
    on_page: Callable[[int], None] | None = None,
) -> Discovery:
    """Fetch active markets, upsert them, then re-read stored active markets not seen.

    A market that left the active listing is looked up by condition id so it is marked
    closed or resolved (with its resolution) instead of staying 'active' forever. With a
    ``limit`` or ``category`` the listing is partial, so only markets past their end date
    are re-read then.
    """
    rejects = Rejects("polymarket_gamma")
    raws = fetch_markets(client, base_url, limit=limit, page_size=page_size, on_page=on_page)
    markets = parse_markets(raws, fee_rates, default_fee_rate, category, rejects)
    markets += _complete_events(client, base_url, markets, fee_rates, default_fee_rate, rejects)
    written = upsert_markets(conn, markets, rejects)
    seen = {m.market_id for m in markets} | {
        r.get("conditionId") for r in raws if isinstance(r, dict)
    }
    partial = limit is not None or category is not None
    query = f"select market_id from {Table.BINARY_MARKETS} where status = 'active'"
    if partial:
        query += " and end_date < now()"
    stale_ids = [r[0] for r in conn.execute(query).fetchall() if r[0] not in seen]
    refreshed = 0
    if stale_ids:
        current = parse_markets(
            fetch_by_condition_ids(client, base_url, stale_ids),
            fee_rates,
            default_fee_rate,
            None,
            rejects,
        )
        refreshed = len(upsert_markets(conn, current, rejects))
    return Discovery(markets, written, refreshed, rejects)


def _complete_events(
    client: httpx.Client,
    base_url: str,
    markets: list[ParsedMarket],
    fee_rates: Mapping[str, float],
    default_fee_rate: float,
    rejects: Rejects,
) -> list[ParsedMarket]:
    """The other outcomes of the (non-augmented) negRisk events the listing touched."""
    have = {m.market_id for m in markets}
    event_ids = sorted(
        {m.event_id for m in markets if m.neg_risk and not m.augmented and m.event_id}
    )
    if not event_ids:
        return []
    raws = event_markets(fetch_events(client, base_url, event_ids))
    extra = parse_markets(raws, fee_rates, default_fee_rate, None, rejects)
    out: list[ParsedMarket] = []
    for market in extra:
        if market.market_id not in have:
            have.add(market.market_id)
            out.append(market)
    return out
