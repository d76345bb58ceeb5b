"""``marketflow services``: start PostgreSQL and Redis (embedded unless configured)."""

from __future__ import annotations

import argparse
import signal
import threading

HELP = "start PostgreSQL and Redis (embedded unless DATABASE_URL/REDIS_URL), print URLs, wait"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detach",
        action="store_true",
        help="leave the embedded servers running and return (stop them with --stop)",
    )
    parser.add_argument("--stop", action="store_true", help="stop detached embedded servers")


def run(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from marketflow.services import Services

    services = Services(get_settings())
    if args.stop:
        services.stop()
        print("embedded services stopped")
        return 0
    urls = services.start()
    for name, url in urls.describe():
        print(f"{name:<16} {url}")
    if args.detach:
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("services running; Ctrl-C stops them", flush=True)
    stop.wait()
    services.stop()
    print("services stopped", flush=True)
    return 0
