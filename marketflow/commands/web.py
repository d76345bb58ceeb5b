"""``marketflow web``: the dashboard server (pages, JSON API, live Redis → WebSocket feed)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streaming.web import WebServer

HELP = "serve the trader's dashboard: pages, JSON API (/docs) and the live WebSocket feed"


def address_line(server: WebServer) -> str:
    """The one line saying where the dashboard is. A generated token is shown only here,
    inside the link (never logged); a token from the environment is named, not shown."""
    if server.token_generated:
        return f"dashboard on {server.link} (open this link: changes need its token)"
    source = "MARKETFLOW_WEB_TOKEN" if server.reads_open else "MARKETFLOW_API_TOKEN"
    return f"dashboard on http://{server.host}:{server.port}/?token=<{source}>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default MARKETFLOW_BIND_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default WEB_PORT, 8000)")


async def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import gc
    import logging

    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings
    from marketflow.supervisor import install_stop_signals
    from streaming.heartbeat import Heartbeat
    from streaming.web import WebConfigError, WebServer

    log = logging.getLogger("marketflow.web")
    settings = get_settings()
    try:
        urls = resolve_urls(settings)
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    token = settings.api_token.get_secret_value() if settings.api_token else None
    write_token = settings.web_token.get_secret_value() if settings.web_token else None
    try:
        server = WebServer(
            urls.redis_url,
            urls.database_url,
            host=args.host or settings.bind_host,
            port=args.port if args.port is not None else settings.web_port,
            token=token,
            write_token=write_token,
            max_clients=settings.web_max_clients,
            extra_hosts=settings.web_allowed_hosts,
        )
    except WebConfigError as exc:
        log.error("%s", exc)
        return 2
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        await server.start()
    except OSError as exc:
        log.error(
            "cannot listen on %s:%s (%s); choose another port with WEB_PORT or --port",
            server.host,
            server.requested_port,
            exc.strerror or exc,
        )
        return 1
    # everything imported and built so far lives as long as the process: keep it out of the
    # garbage collector's full passes (one over this heap takes about 35 ms here, a pause
    # every browser would see)
    gc.collect()
    gc.freeze()
    print(address_line(server), flush=True)
    try:
        async with Heartbeat(urls.redis_url, "web", server.counters):
            await stop.wait()
    finally:
        await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_serve(args))
