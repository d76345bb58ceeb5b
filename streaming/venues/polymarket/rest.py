"""The Gamma REST API: ``fetch_markets`` pages through ``/markets``,
``fetch_by_condition_ids`` re-reads known markets and ``fetch_events`` reads whole negRisk
events. The answers are parsed by ``parsing``; storage is in
``streaming/polymarket/discovery.py``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import httpx

log = logging.getLogger(__name__)


def fetch_markets(
    client: httpx.Client,
    base_url: str,
    *,
    limit: int | None = None,
    page_size: int = 100,
    params: Mapping[str, str] | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[dict]:
    """Page through ``GET {base}/markets?active=true&closed=false&limit=&offset=``.

    ``on_page`` is told the running count after each page (progress for long listings)."""
    url = base_url.rstrip("/") + "/markets"
    out: list[dict] = []
    seen: set[object] = set()
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
        fresh = [
            item
            for item in page
            if isinstance(item, dict) and item.get("conditionId", id(item)) not in seen
        ]
        seen.update(item.get("conditionId", id(item)) for item in fresh)
        out.extend(fresh)
        if on_page is not None:
            on_page(len(out))
        if len(page) < size or not fresh:
            break  # the last page, or a server repeating itself (offset ignored)
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
        response = client.get(url, params=tuple(params))
        response.raise_for_status()
        page = response.json()
        if isinstance(page, list):
            out.extend(item for item in page if isinstance(item, dict))
    return out


def fetch_events(client: httpx.Client, base_url: str, event_ids: list[str]) -> list[dict]:
    """Whole events (``GET /events?id=…``), each with its ``markets`` array."""
    url = base_url.rstrip("/") + "/events"
    out: list[dict] = []
    for start in range(0, len(event_ids), 50):
        ids = event_ids[start : start + 50]
        response = client.get(url, params=(*(("id", i) for i in ids), ("limit", str(len(ids)))))
        response.raise_for_status()
        page = response.json()
        if isinstance(page, list):
            out.extend(item for item in page if isinstance(item, dict))
    return out
