"""Gamma market objects into ``ParsedMarket`` (pure): ``parse_market`` turns one object into a
market or a reason to skip it; ``event_markets`` flattens negRisk events.

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
from datetime import UTC, datetime

from analytics.arbitrage import fee_rate_for
from core.events import Rejects

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


def _parse_end_date(value: object) -> datetime | None:
    """Gamma's ``endDate`` as an aware UTC datetime; None when Gamma gives none.

    Gamma's dates are UTC: most carry ``Z``, but some markets give a bare date or a
    datetime without an offset (e.g. ``2026-03-12`` / ``2026-03-12T09:25:00``). Those are
    read as UTC, not dropped: a market without an end date is never checked for expiry.
    Text that is not a date at all is a bad market object (``SkipMarket``, a counted
    reject)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SkipMarket("bad_end_date")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SkipMarket("bad_end_date") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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
        # untrusted input: float() raises on what it cannot read, handled below
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
        end_date=_parse_end_date(raw.get("endDate") or raw.get("end_date")),
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
            # raw JSON: parse_market checks its shape and says why it skips one
            market = parse_market(raw, fee_rates, default_fee_rate)  # type: ignore[arg-type]
        except SkipMarket as exc:
            if rejects is not None:
                rejects.add(exc.reason, raw.get("conditionId") if isinstance(raw, dict) else raw)
            continue
        if wanted and market.category != wanted:
            continue
        out.append(market)
    return out


def event_markets(events: Iterable[Mapping]) -> list[dict]:
    """The market objects of events, each given its parent event (as the listing does)."""
    out: list[dict] = []
    for event in events:
        parent = {k: v for k, v in event.items() if k != "markets"}
        for market in event.get("markets") or []:
            if isinstance(market, dict):
                out.append(market if market.get("events") else dict(market, events=[parent]))
    return out
