"""Market discovery from the Gamma REST API, upserted into ``symbols`` and ``binary_markets``.

``parse_market`` is pure (one Gamma market object → ``ParsedMarket`` or a reason to skip);
``fetch_markets`` pages through ``/markets``; ``upsert_markets`` writes, one savepoint per
market so one bad row never aborts the others.

Gamma encodes ``outcomes`` and ``clobTokenIds`` as JSON strings. The YES token is the one
whose outcome label is YES (or Up/Over/True in two-outcome markets that use other words),
never simply element 0; when neither label is recognised the first listed outcome is the
YES side and the labels are kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
import psycopg

from analytics.arbitrage import fee_rate_for
from marketflow.contracts import AssetType, Table
from streaming.events import Rejects

log = logging.getLogger(__name__)

SYMBOL_PREFIX = "PM:"
_YES_WORDS = {"yes", "up", "over", "true"}
_NO_WORDS = {"no", "down", "under", "false"}


class SkipMarket(ValueError):
    """This Gamma object is not a tradable binary market; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedMarket:
    market_id: str  # conditionId (0x hex)
    question: str
    slug: str | None
    yes_token_id: str
    no_token_id: str
    yes_outcome: str
    no_outcome: str
    event_id: str | None
    event_slug: str | None
    neg_risk: bool
    augmented: bool
    category: str | None
    end_date: datetime | None
    status: str  # active | closed | resolved
    resolution: str | None  # yes | no when resolved
    fee_rate: float
    tick_size: float | None

    @property
    def symbol(self) -> str:
        return symbol_for(self.slug, self.market_id)


def symbol_for(slug: str | None, market_id: str, disambiguate: bool = False) -> str:
    """``PM:<slug>`` (Gamma slugs are unique), else ``PM:<short conditionId>``.

    ``disambiguate`` appends the short condition id, for the rare slug already taken.
    """
    short = market_id[2:12] if market_id.startswith("0x") else market_id[:10]
    if not slug:
        return f"{SYMBOL_PREFIX}{short}"
    return f"{SYMBOL_PREFIX}{slug}-{short}" if disambiguate else f"{SYMBOL_PREFIX}{slug}"


def _json_list(value: object, name: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise SkipMarket(f"bad_{name}") from None
        if isinstance(parsed, list):
            return parsed
    raise SkipMarket(f"missing_{name}")


def _side_indexes(outcomes: list[str]) -> tuple[int, int]:
    labels = [str(o).strip().lower() for o in outcomes]
    yes = next((i for i, label in enumerate(labels) if label in _YES_WORDS), None)
    no = next((i for i, label in enumerate(labels) if label in _NO_WORDS), None)
    if yes is not None and no is not None and yes != no:
        return yes, no
    if yes is not None:
        return yes, 1 - yes
    if no is not None:
        return 1 - no, no
    return 0, 1


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _category(raw: Mapping, event: Mapping) -> str | None:
    for value in (raw.get("category"), event.get("category")):
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    fee_type = raw.get("feeType")  # e.g. "crypto_fees" when Gamma omits the category
    if isinstance(fee_type, str) and fee_type.endswith("_fees"):
        return fee_type[: -len("_fees")].lower()
    return None


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def parse_market(
    raw: Mapping, fee_rates: Mapping[str, float], default_fee_rate: float = 0.0
) -> ParsedMarket:
    """One Gamma market → ``ParsedMarket``; raises ``SkipMarket`` for non-binary ones."""
    if not isinstance(raw, Mapping):
        raise SkipMarket("not_an_object")
    market_id = raw.get("conditionId")
    if not isinstance(market_id, str) or not market_id:
        raise SkipMarket("missing_condition_id")
    question = raw.get("question") or raw.get("title")
    if not isinstance(question, str) or not question:
        raise SkipMarket("missing_question")
    outcomes = _json_list(raw.get("outcomes"), "outcomes")
    tokens = _json_list(raw.get("clobTokenIds"), "clob_token_ids")
    if len(outcomes) != 2 or len(tokens) != 2:
        raise SkipMarket("not_binary")
    if not all(isinstance(t, str) and t for t in tokens):
        raise SkipMarket("bad_clob_token_ids")
    yes_i, no_i = _side_indexes(outcomes)
    events = raw.get("events")
    event = events[0] if isinstance(events, list) and events and isinstance(events[0], dict) else {}
    neg_risk = bool(raw.get("negRisk") or event.get("negRisk") or event.get("enableNegRisk"))
    augmented = bool(raw.get("negRiskAugmented") or event.get("negRiskAugmented"))
    category = _category(raw, event)
    fee_rate = (
        0.0
        if raw.get("feesEnabled") is False
        else fee_rate_for(category, fee_rates, default_fee_rate)
    )
    status, resolution = "active", None
    if raw.get("closed"):
        status = "closed"
        prices = [_float(p) for p in _json_list(raw.get("outcomePrices") or "[]", "prices")]
        if len(prices) == 2 and None not in prices:
            if prices[yes_i] == 1.0 and prices[no_i] == 0.0:
                status, resolution = "resolved", "yes"
            elif prices[no_i] == 1.0 and prices[yes_i] == 0.0:
                status, resolution = "resolved", "no"
    elif raw.get("active") is False:
        status = "closed"
    slug = raw.get("slug") if isinstance(raw.get("slug"), str) and raw.get("slug") else None
    return ParsedMarket(
        market_id=market_id,
        question=question,
        slug=slug,
        yes_token_id=tokens[yes_i],
        no_token_id=tokens[no_i],
        yes_outcome=str(outcomes[yes_i]),
        no_outcome=str(outcomes[no_i]),
        event_id=str(event["id"]) if event.get("id") is not None else None,
        event_slug=event.get("slug") if isinstance(event.get("slug"), str) else None,
        neg_risk=neg_risk,
        augmented=augmented,
        category=category,
        end_date=_parse_time(raw.get("endDate") or raw.get("end_date")),
        status=status,
        resolution=resolution,
        fee_rate=fee_rate,
        tick_size=_float(raw.get("orderPriceMinTickSize")),
    )


def parse_markets(
    raws: Iterable[object],
    fee_rates: Mapping[str, float],
    default_fee_rate: float = 0.0,
    category: str | None = None,
    rejects: Rejects | None = None,
) -> list[ParsedMarket]:
    """Parse many; skipped ones are counted in ``rejects``; ``category`` filters (any case)."""
    out: list[ParsedMarket] = []
    wanted = category.strip().lower() if category else None
    for raw in raws:
        try:
            market = parse_market(raw, fee_rates, default_fee_rate)  # type: ignore[arg-type]
        except SkipMarket as exc:
            if rejects is not None:
                rejects.add(exc.reason, raw.get("conditionId") if isinstance(raw, dict) else raw)
            continue
        if wanted and market.category != wanted:
            continue
        out.append(market)
    return out


def fetch_markets(
    client: httpx.Client,
    base_url: str,
    *,
    limit: int | None = None,
    page_size: int = 100,
    params: Mapping[str, str] | None = None,
) -> list[dict]:
    """Page through ``GET {base}/markets?active=true&closed=false&limit=&offset=``."""
    url = base_url.rstrip("/") + "/markets"
    out: list[dict] = []
    offset = 0
    while limit is None or len(out) < limit:
        size = page_size if limit is None else min(page_size, limit - len(out))
        query = {"active": "true", "closed": "false", "limit": str(size), "offset": str(offset)}
        query.update(params or {})
        response = client.get(url, params=query)
        response.raise_for_status()
        page = response.json()
        if isinstance(page, dict):  # tolerate an envelope {"data": [...]}
            page = page.get("data") or []
        if not isinstance(page, list):
            raise ValueError("Gamma /markets did not return a JSON array")
        out.extend(item for item in page if isinstance(item, dict))
        if len(page) < size:
            break
        offset += len(page)
    return out[:limit] if limit is not None else out


def fetch_by_condition_ids(
    client: httpx.Client, base_url: str, condition_ids: list[str], chunk: int = 50
) -> list[dict]:
    """Current state of known markets (closed ones included), to mark closed/resolved."""
    url = base_url.rstrip("/") + "/markets"
    out: list[dict] = []
    for start in range(0, len(condition_ids), chunk):
        ids = condition_ids[start : start + chunk]
        params = [("condition_ids", cid) for cid in ids] + [("limit", str(len(ids)))]
        response = client.get(url, params=params)
        response.raise_for_status()
        page = response.json()
        if isinstance(page, list):
            out.extend(item for item in page if isinstance(item, dict))
    return out


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
                symbol_id = conn.execute(
                    _UPSERT_SYMBOL,
                    (
                        symbol,
                        market.question[:500],
                        market.tick_size or 0.01,
                        market.status == "active",
                    ),
                ).fetchone()[0]
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


def active_condition_ids(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        f"select market_id from {Table.BINARY_MARKETS} where status = 'active'"
    ).fetchall()
    return [r[0] for r in rows]


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
) -> Discovery:
    """Fetch active markets, upsert them, then re-read stored active markets not seen.

    A market that left the active listing is looked up by condition id so it is marked
    closed or resolved (with its resolution) instead of staying 'active' forever. With a
    ``limit`` or ``category`` the listing is partial, so only markets past their end date
    are re-read then.
    """
    rejects = Rejects("polymarket_gamma")
    raws = fetch_markets(client, base_url, limit=limit, page_size=page_size)
    markets = parse_markets(raws, fee_rates, default_fee_rate, category, rejects)
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
