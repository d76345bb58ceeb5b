"""``marketflow replay FILE``: recorded trades through the ingest path (docs/providers.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

HELP = "replay recorded trades (CSV or Parquet) through the ingest path into PostgreSQL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", nargs="?", help="CSV or Parquet of trades"
    )
    parser.add_argument(
        "--archived-day",
        metavar="YYYY-MM-DD",
        help="instead of FILE: that day of the tick archive (TICK_ARCHIVE_DIR, "
        "docs/retention.md), every symbol with its trade ids, sides and quotes",
    )
    parser.add_argument(
        "--symbol", metavar="S", help="symbol of every row (required without a symbol column)"
    )
    parser.add_argument(
        "--market",
        metavar="M",
        help="exchange calendar of the symbol: XNYS, XLON or 24/7 (crypto); "
        "default: inferred (e.g. ETHUSDT → 24/7)",
    )
    parser.add_argument(
        "--row-size",
        type=float,
        metavar="R",
        help="price bin of the volume profile for the file's symbols (an existing symbol is "
        "updated); default for a new symbol: from its median price, one bin = 0.01-0.1 %% "
        "of the price (docs/signal-marts.md)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, metavar="N", help="replay at N× the recorded speed")
    pace.add_argument("--fast", action="store_true", help="as fast as possible (the default)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from core.settings import get_settings
    from streaming.ingest.runner import run_ingest
    from streaming.providers.base import ProviderError
    from streaming.providers.replay import ReplayProvider

    log = logging.getLogger("marketflow.replay")
    if args.speed is not None and args.speed <= 0:
        log.error("--speed must be a positive number")
        return 2
    if (args.file is None) == (args.archived_day is None):
        log.error("give either FILE or --archived-day YYYY-MM-DD")
        return 2
    if args.archived_day is not None:
        args.file = _archived_file(args.archived_day)
        if args.file is None:
            return 2
    try:
        provider = ReplayProvider(
            args.file,
            symbol=args.symbol,
            market=args.market,
            speed=None if args.fast else args.speed,
            row_size=args.row_size,
        )
    except ProviderError as exc:
        log.error("%s", exc)
        return 2
    settings = get_settings()
    if args.row_size is not None:
        _update_row_size(settings, provider.symbols, args.row_size)
    sizes = ", ".join(f"{s} {provider.row_sizes[s]:g}" for s in provider.symbols)
    print(f"replaying {provider.total:,} trades of {', '.join(provider.symbols)} from {args.file}")
    print(f"row size of new symbols: {sizes}")
    return asyncio.run(run_ingest(settings, provider, source="replay", progress=True))


def _archived_file(day: str) -> Path | None:
    import logging
    from datetime import date

    from storage.tick_archive import TickArchive

    log = logging.getLogger("marketflow.replay")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        log.error("--archived-day wants a date like 2024-03-05, got %r", day)
        return None
    archive = TickArchive.configured()
    if when not in archive.days():
        log.error("%s is not in the tick archive at %s", when, archive.root)
        return None
    return archive.file_path(when)


def _update_row_size(settings: Settings, symbols: list[str], row_size: float) -> None:
    """An explicit --row-size also applies to symbols that exist already (new ones get it
    when the pipeline declares them). Without a database, ingest reports the error."""
    from core.service_urls import ServiceError, resolve_urls
    from storage.db import connect

    try:
        url = resolve_urls(settings).database_url
    except ServiceError:
        return
    with connect(url, autocommit=True) as conn:
        changed = conn.execute(
            "update symbols set row_size = %s, updated_at = now() "
            "where symbol = any(%s) and row_size <> %s returning symbol",
            (row_size, symbols, row_size),
        ).fetchall()
    for (symbol,) in changed:
        print(f"{symbol}: row size set to {row_size:g} (profiles use it from their next run)")
