"""``marketflow replay FILE``: recorded trades through the ingest path (issue 3 item 10)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "replay recorded trades (CSV or Parquet) through the ingest path into PostgreSQL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="CSV or Parquet of trades")
    parser.add_argument(
        "--symbol", metavar="S", help="symbol of every row (required without a symbol column)"
    )
    parser.add_argument(
        "--market",
        metavar="M",
        help="exchange calendar of the symbol: XNYS, XLON or 24/7 (crypto); "
        "default: inferred (e.g. ETHUSDT → 24/7)",
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
    try:
        provider = ReplayProvider(
            args.file,
            symbol=args.symbol,
            market=args.market,
            speed=None if args.fast else args.speed,
        )
    except ProviderError as exc:
        log.error("%s", exc)
        return 2
    print(f"replaying {provider.total:,} trades of {', '.join(provider.symbols)} from {args.file}")
    return asyncio.run(run_ingest(get_settings(), provider, source="replay", progress=True))
