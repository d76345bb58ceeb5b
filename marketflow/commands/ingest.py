"""``marketflow ingest``: stream a provider into PostgreSQL and Redis (docs/architecture.md)."""

from __future__ import annotations

import argparse

HELP = "stream trades from a provider (PROVIDER, SYMBOLS) into PostgreSQL, candles and Redis"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        metavar="P",
        help="demo, alpaca_ws, alpha_vantage, ig or router (default: PROVIDER, else demo)",
    )
    parser.add_argument(
        "--symbols", metavar="A,B", help="comma-separated symbols (default: SYMBOLS)"
    )
    parser.add_argument(
        "--rate", type=float, metavar="N", help="demo only: trades/s per symbol (DEMO_RATE)"
    )


def parse_symbols(text: str | None, default: list[str]) -> list[str]:
    if not text:
        return list(default)
    return [s.strip().upper() for s in text.split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging

    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings
    from streaming.ingest.runner import run_ingest
    from streaming.providers.base import ProviderError, make_provider

    log = logging.getLogger("marketflow.ingest")
    settings = get_settings()
    if args.rate is not None:
        settings = settings.model_copy(update={"demo_rate": args.rate})
    symbols = parse_symbols(args.symbols, settings.symbols)
    name = (args.provider or settings.provider or "demo").lower()
    # providers that read the routing table (router, ig) get the database the servers run
    # (the environment's or the embedded one) in their settings; they never resolve it
    with contextlib.suppress(ServiceError):  # none configured: run_ingest says so below
        database_url = resolve_urls(settings).database_url
        settings = settings.model_copy(update={"database_url": database_url})
    try:
        provider = make_provider(settings, symbols, name)
    except ProviderError as exc:
        log.error("%s", exc)
        return 2
    log.info("ingest: provider %s, symbols %s", provider.name, ", ".join(provider.symbols))
    try:
        return asyncio.run(run_ingest(settings, provider, source=provider.name))
    except ProviderError as exc:
        log.error("%s", exc)
        return 2
