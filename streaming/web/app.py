"""The ASGI application: pages, JSON API, docs and the ``/ws`` live feed behind ``Guard``.

A FastAPI application (a Starlette one with typed routes): the API's routes generate
``/openapi.json``; the pages, static files and the WebSocket are plain Starlette routes."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from streaming.web import api, errors, openapi, pages
from streaming.web.hub import CLOSE_TOO_MANY_CLIENTS, Client, Hub, parse_filter
from streaming.web.queries import Queries
from streaming.web.security import Guard


async def live(websocket: WebSocket) -> None:
    """``/ws?channels=a,b&symbols=X,Y``: JSON array frames of ``{channel, data}``. The page
    may send ``{"channels": [...], "symbols": [...]}`` later to change its filters."""
    hub: Hub = websocket.app.state.hub
    query = websocket.query_params
    peer = (websocket.client.host, websocket.client.port) if websocket.client else ("", 0)
    client = Client(
        websocket.send_text,
        peer,
        parse_filter(query.getlist("channels")),
        parse_filter(query.getlist("symbols")),
    )
    await websocket.accept()
    if not hub.admit(client):
        await websocket.close(
            CLOSE_TOO_MANY_CLIENTS, f"too many dashboard clients (at most {hub.max_clients})"
        )
        return
    writer = asyncio.create_task(hub.write(client))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            client.refilter(message.get("text") or message.get("bytes") or "")
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(client)
        writer.cancel()
        with contextlib.suppress(BaseException):
            await writer


def build_app(
    hub: Hub,
    queries: Queries,
    *,
    hosts: frozenset[str],
    token: str | None,
    reads_open: bool = False,
    static_dir: Path = pages.STATIC_DIR,
) -> FastAPI:
    """``token``: what writes need (and reads, unless ``reads_open`` for loopback clients)."""
    app = FastAPI(
        title=openapi.TITLE,
        openapi_url="/openapi.json",
        docs_url=None,  # /docs is our own page: FastAPI's loads its scripts from a CDN
        redoc_url=None,
        middleware=[Middleware(Guard, hosts=hosts, token=token, reads_open=reads_open)],
    )
    app.include_router(api.router)
    app.router.routes.append(WebSocketRoute("/ws", live))
    app.router.routes.extend(pages.routes(static_dir))
    errors.install(app)
    openapi.install(app, reads_open)
    app.state.hub = hub
    app.state.queries = queries
    return app
