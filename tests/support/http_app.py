"""Serve an aiohttp application on a free loopback port (the fakes' HTTP side)."""

from __future__ import annotations

from aiohttp import web


async def start_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1; returns the runner (``cleanup()`` stops it) and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
