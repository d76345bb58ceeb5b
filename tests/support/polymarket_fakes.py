"""Local servers speaking Polymarket's wire protocols, fed by the real captures.

- ``MarketServer``: the CLOB market channel (websockets) on 127.0.0.1: answers the
  initial ``{"assets_ids": [...], "type": "market"}`` with one ``book`` snapshot per
  asset (an array, as the venue does), applies ``operation`` subscribe/unsubscribe,
  answers text ``PING`` with ``PONG`` (unless told to be silent), broadcasts frames,
  and drops connections on demand.
- ``GammaServer``: ``GET /markets`` with ``limit``/``offset`` pagination and
  ``condition_ids`` look-ups, and ``GET /events?id=``, from lists of Gamma objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.paths import CAPTURES

DATA = CAPTURES / "polymarket"


def capture(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def snapshot(
    asset_id: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    market: str = "0xmarket",
    ts: str = "1728799418260",
) -> dict:
    """A ``book`` event in the venue's shape; levels listed best LAST like the real one."""
    return {
        "event_type": "book",
        "asset_id": asset_id,
        "market": market,
        "timestamp": ts,
        "hash": "0",
        "bids": [{"price": p, "size": s} for p, s in sorted(bids)],
        "asks": [{"price": p, "size": s} for p, s in sorted(asks, reverse=True)],
    }


class MarketServer:
    def __init__(self) -> None:
        self.books: dict[str, dict] = {}  # asset → snapshot served on subscribe
        self.received: list[object] = []  # every client message, decoded when JSON
        self.connections: set[ServerConnection] = set()
        self.subscriptions: dict[ServerConnection, set[str]] = {}
        self.connects = 0
        self.answer_pings = True
        self._server = None
        self.url = ""

    async def __aenter__(self) -> MarketServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws/market"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 3)

    def book_for(self, asset: str) -> dict:
        if asset in self.books:
            return copy.deepcopy(self.books[asset])
        return capture("book") | {"asset_id": asset}

    async def _handle(self, ws: ServerConnection) -> None:
        self.connects += 1
        self.connections.add(ws)
        self.subscriptions[ws] = set()
        try:
            async for raw in ws:
                if raw == "PING":
                    self.received.append("PING")
                    if self.answer_pings:
                        await ws.send("PONG")
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    self.received.append(raw)
                    continue
                self.received.append(msg)
                assets = msg.get("assets_ids") or []
                if msg.get("type") == "market" or msg.get("operation") == "subscribe":
                    self.subscriptions[ws].update(assets)
                    await ws.send(json.dumps([self.book_for(a) for a in assets]))
                elif msg.get("operation") == "unsubscribe":
                    self.subscriptions[ws].difference_update(assets)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(ws)
            self.subscriptions.pop(ws, None)

    async def broadcast(self, frame: object) -> None:
        text = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        for ws in list(self.connections):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(text)

    async def drop_all(self) -> None:
        """A clean close from the server side (a naive client spins on this)."""
        for ws in list(self.connections):
            await ws.close()

    def sent_subscriptions(self) -> list[dict]:
        return [m for m in self.received if isinstance(m, dict)]


class GammaServer:
    """``/markets`` and ``/events`` over lists of Gamma objects (runs in a thread)."""

    def __init__(
        self, markets: list[dict], events: list[dict] | None = None, ignore_offset: bool = False
    ) -> None:
        self.markets = markets
        self.ignore_offset = ignore_offset  # a misbehaving server: always the first page
        self.events = events or []  # ``/events?id=`` objects, each with its ``markets``
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                outer.requests.append(query)
                if url.path == "/events":
                    wanted = set(query.get("id", []))
                    page = [e for e in outer.events if str(e.get("id")) in wanted]
                elif url.path != "/markets":
                    self.send_error(404)
                    return
                elif "condition_ids" in query:
                    wanted = set(query["condition_ids"])
                    page = [m for m in outer.markets if m.get("conditionId") in wanted]
                else:
                    listed = [
                        m
                        for m in outer.markets
                        if m.get("active", True) and not m.get("closed", False)
                    ]
                    offset = 0 if outer.ignore_offset else int(query.get("offset", ["0"])[0])
                    limit = int(query.get("limit", ["100"])[0])
                    page = listed[offset : offset + limit]
                body = json.dumps(page).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> GammaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
