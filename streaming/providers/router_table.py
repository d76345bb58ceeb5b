"""Which provider serves which symbol: the ``symbol_providers`` table first, then the
default rules, then the credentials present. Pure except ``load_table``.

Defaults: Polymarket symbols (``PM:`` prefix, or a slug with ``-`` longer than 6) →
polymarket; LSE (``.L``), indices (``^``) and FX pairs → ig; everything else → alpaca_ws.
FX is checked before the US rule (otherwise EURUSD would go to Alpaca), and is
recognised first, and only for real ISO currency pairs (so BTCUSD is not taken for FX).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.contracts import Table
from storage.symbols import is_fx_pair

if TYPE_CHECKING:
    from core.settings import Settings

POLYMARKET = "polymarket"
# providers that run elsewhere (their own command) or need input the router cannot give
EXTERNAL = {
    POLYMARKET: "run `marketflow polymarket stream` for these",
    "replay": "recorded files go through `marketflow replay FILE`",
}
# settings attribute → environment variable, per provider
CREDENTIALS: dict[str, tuple[tuple[str, str], ...]] = {
    "alpaca_ws": (("alpaca_api_key", "ALPACA_API_KEY"), ("alpaca_secret_key", "ALPACA_SECRET_KEY")),
    "ig": (
        ("ig_api_key", "IG_API_KEY"),
        ("ig_username", "IG_USERNAME"),
        ("ig_password", "IG_PASSWORD"),
    ),
    "alpha_vantage": (("alpha_vantage_api_key", "ALPHA_VANTAGE_API_KEY"),),
    "demo": (),
}


@dataclass(frozen=True, slots=True)
class Route:
    symbol: str
    provider: str
    epic: str | None = None
    from_table: bool = False


@dataclass
class Plan:
    workers: dict[str, list[str]] = field(default_factory=dict)  # provider → its symbols
    external: dict[str, list[str]] = field(default_factory=dict)  # provider → symbols
    missing: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    epics: dict[str, str] = field(default_factory=dict)


def default_provider(symbol: str) -> str:
    s = symbol.upper()
    if s.startswith("PM:") or (("-" in s) and len(s) > 6):
        return POLYMARKET
    if s.endswith(".L") or s.startswith("^") or is_fx_pair(s):
        return "ig"
    return "alpaca_ws"


def routes_for(symbols: Iterable[str], table: Mapping[str, Route]) -> list[Route]:
    return [table.get(s.upper()) or Route(s.upper(), default_provider(s)) for s in symbols]


def missing_credentials(provider: str, settings: Settings) -> list[str]:
    return [env for attr, env in CREDENTIALS.get(provider, ()) if not getattr(settings, attr)]


def plan(routes: Sequence[Route], settings: Settings) -> Plan:
    """Group routes into workers; set aside external providers and those lacking keys."""
    out = Plan()
    for route in routes:
        if route.epic:
            out.epics[route.symbol] = route.epic
        if route.provider in EXTERNAL:
            out.external.setdefault(route.provider, []).append(route.symbol)
            continue
        missing = missing_credentials(route.provider, settings)
        if missing:
            out.missing.setdefault(route.provider, (missing, []))[1].append(route.symbol)
            continue
        out.workers.setdefault(route.provider, []).append(route.symbol)
    return out


def load_table(database_url: str) -> dict[str, Route]:
    """Active rows of ``symbol_providers`` (symbol → Route)."""
    import psycopg

    from storage.db import libpq_url

    query = f"select symbol, provider, epic from {Table.SYMBOL_PROVIDERS} where active"
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        rows = conn.execute(query).fetchall()
    return {
        str(sym).upper(): Route(str(sym).upper(), str(prov).strip().lower(), epic or None, True)
        for sym, prov, epic in rows
    }
