"""``marketflow polymarket markets|stream``: discover binary markets; stream their books."""

from __future__ import annotations

import argparse

HELP = "Polymarket: discover binary markets (markets) or stream books and arbitrage (stream)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="polymarket_command", metavar="ACTION", required=True)
    markets = sub.add_parser(
        "markets",
        help="fetch active, open markets from Gamma, upsert symbols/binary_markets, print them",
        description="Fetch active, open binary markets from the Gamma API "
        "(POLYMARKET_GAMMA_URL), upsert them into symbols and binary_markets, mark stored "
        "markets that closed or resolved, and print a table.",
    )
    markets.add_argument("--category", help="only this category (case-insensitive)")
    markets.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most N markets from the listing (default: all pages)",
    )
    markets.add_argument("--page-size", type=int, default=100, help="Gamma page size")
    stream = sub.add_parser(
        "stream",
        help="stream the books of active binary_markets; store prices and opportunities",
        description="Subscribe to the CLOB market channel (POLYMARKET_WS_URL) for every "
        "active market in binary_markets (run `marketflow polymarket markets` first), keep "
        "full books, write conflated binary_prices rows and opportunity episodes, publish "
        "on Redis binary:prices and binary:arbitrage. Threshold: POLYMARKET_MIN_EDGE "
        "(edge per share after taker fees).",
    )
    stream.add_argument(
        "--paper",
        action="store_true",
        help="book one equal-share pair per opportunity episode (paper; also POLYMARKET_PAPER)",
    )


def _markets(args: argparse.Namespace) -> int:
    import sys

    import httpx

    from core.service_urls import resolve_urls
    from core.settings import get_settings
    from storage.db import connect
    from streaming.polymarket.discovery import discover

    settings = get_settings()
    urls = resolve_urls(settings)
    with (
        httpx.Client(timeout=30.0, follow_redirects=True) as client,
        connect(urls.database_url, application_name="marketflow-polymarket-markets") as conn,
    ):
        try:
            result = discover(
                conn,
                client,
                settings.polymarket_gamma_url,
                settings.polymarket_fee_rates,
                settings.polymarket_fee_rate,
                category=args.category,
                limit=args.limit,
                page_size=args.page_size,
                on_page=lambda n: print(f"fetched {n} markets ...", file=sys.stderr, flush=True),
            )
        except httpx.HTTPError as exc:
            print(
                f"Gamma request failed ({exc.__class__.__name__}: {exc}); check "
                "POLYMARKET_GAMMA_URL and the network"
            )
            return 1
    print(f"{'symbol':<44} {'category':<12} {'neg':<4} {'fee':>6} {'end (UTC)':<17} question")
    for m in result.markets:
        symbol = result.written.get(m.market_id, m.symbol)
        end = m.end_date.strftime("%Y-%m-%d %H:%M") if m.end_date else "-"
        neg = "aug" if m.augmented else ("yes" if m.neg_risk else "")
        print(
            f"{symbol[:44]:<44} {(m.category or '-')[:12]:<12} {neg:<4} "
            f"{m.fee_rate:>6.4f} {end:<17} {m.question[:70]}"
        )
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.rejects.counts.items()))
    print(
        f"{len(result.written)} markets stored, {result.refreshed} re-read "
        f"(closed/resolved marked){'; skipped: ' + skipped if skipped else ''}"
    )
    return 0


def _stream(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from core.service_urls import resolve_urls
    from core.settings import get_settings
    from streaming.heartbeat import Heartbeat
    from streaming.polymarket.stream import PolymarketStream, StreamConfig, load_markets

    settings = get_settings()
    urls = resolve_urls(settings)
    paper = args.paper or settings.polymarket_paper
    config = StreamConfig.from_settings(settings, paper=paper)
    markets = load_markets(urls.database_url, config)
    if not markets:
        # keep running (under `marketflow up` an exit would only be restarted): the
        # periodic refresh subscribes the markets as soon as discovery has stored some
        print(
            "no active binary markets with token ids yet: run `marketflow polymarket "
            "markets`; waiting for them",
            flush=True,
        )
    print(
        f"streaming {len(markets)} markets ({2 * len(markets)} tokens) from "
        f"{config.ws_url}; min edge {config.min_edge}{'; paper trading' if paper else ''}",
        flush=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stream = PolymarketStream(config, urls.database_url, urls.redis_url, markets)
        async with Heartbeat(urls.redis_url, "polymarket", stream.counters):
            await stream.run(stop)

    asyncio.run(main())
    return 0


def run(args: argparse.Namespace) -> int:
    import psycopg

    from core.service_urls import ServiceError

    try:
        if args.polymarket_command == "markets":
            return _markets(args)
        return _stream(args)
    except ServiceError as exc:
        print(f"error: {exc}")
        return 1
    except psycopg.OperationalError as exc:
        print(f"error: PostgreSQL unreachable ({exc.__class__.__name__}); check DATABASE_URL")
        return 1
    except psycopg.errors.UndefinedTable:
        print("error: the database has no Polymarket tables yet; run `marketflow migrate`")
        return 1
