"""``marketflow services``: start PostgreSQL and Redis (embedded unless configured).

Before starting, relocated server folders whose home is gone are removed
(``marketflow.embedded.relocated``); ``--prune`` does only that.
"""

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
    parser.add_argument(
        "--prune",
        action="store_true",
        help="only remove relocated server folders (/var/lib/marketflow/<id>) whose home is "
        "gone and from which no server runs",
    )


def prune() -> int:
    from marketflow.embedded.relocated import prune_relocated

    removed = prune_relocated()
    for line in removed:
        print(f"removed {line}")
    return len(removed)


def run(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from marketflow.services import Services

    if args.prune:
        print(f"{prune()} relocated server folder(s) removed")
        return 0
    services = Services(get_settings())
    if args.stop:
        services.stop()
        print("embedded services stopped")
        return 0
    prune()
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
