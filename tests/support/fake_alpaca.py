"""A local Alpaca market-data server: the v2 stock stream and the v1beta3 crypto stream
(WebSocket, msgpack or JSON) and the historical trades REST endpoints
(``GET /v2/stocks/trades``, ``/v1beta3/crypto/us/trades``, ``/v1beta3/crypto/us/latest/trades``).

The stock stream plays ``tape`` and the crypto stream ``crypto_tape`` (the prints that
"happened"); the REST side serves both, so a test can drop a stream, let the market move
on, and check that the client's gap fill recovers exactly the missed prints. Messages and
error frames follow ``tests/data/alpaca/stream_session_frames.json`` (stocks, with the
corrections and cancels of ``stock_corrections_frames.json``) and
``crypto_stream_frames.json`` (crypto: no exchange, conditions or tape on a print, the
taker side ``tks`` instead); REST pages the captured ones in ``tests/data/alpaca/rest_*.json``
(``verbatim`` serves a capture as it is). The REST side pages like Alpaca: ``limit`` capped
by ``page_size``, pages shorter than the limit before the end (``page_sizes``),
``next_page_token`` until null; it counts a rate-limit window (``X-RateLimit-*`` headers on
every answer, 429 past the budget or when ``answer_429`` asks) and fails pages on demand
(``fail_pages`` once, ``down_pages`` until cleared, ``garbage_pages`` once with a body that
is not JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from core.settings import Settings
from tests.support.http_app import start_app

ERROR_MESSAGES = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    500: "internal error",
}


def rfc3339(ts: datetime, nanos: int = 0) -> str:
    """Alpaca's REST form: UTC, nanosecond fraction, ``Z``."""
    base = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ts.microsecond * 1000 + nanos:09d}Z"


@dataclass
class Print:
    symbol: str  # Alpaca's name: AAPL, BTC/USD
    ts: datetime
    price: float
    size: float
    trade_id: int
    exchange: str = "D"
    conditions: tuple[str, ...] = ("@", "I")
    tape: str = "C"
    taker: str | None = None  # crypto: the taker side "tks" (B, S, -)
    update: str | None = None  # "u": canceled, incorrect, corrected

    @property
    def crypto(self) -> bool:
        return "/" in self.symbol

    def rest(self) -> dict[str, Any]:
        if self.crypto:
            body: dict[str, Any] = {
                "t": rfc3339(self.ts, nanos=321),
                "p": self.price,
                "s": self.size,
                "tks": self.taker or "-",
                "i": self.trade_id,
            }
        else:
            body = {
                "t": rfc3339(self.ts, nanos=321),
                "x": self.exchange,
                "p": self.price,
                "s": self.size,
                "c": list(self.conditions),
                "i": self.trade_id,
                "z": self.tape,
            }
        if self.update:
            body["u"] = self.update
        return body

    def stamp(self) -> msgpack.Timestamp:
        ns = int(self.ts.timestamp()) * 1_000_000_000 + self.ts.microsecond * 1000 + 321
        return msgpack.Timestamp.from_unix_nano(ns)

    def stream(self) -> dict[str, Any]:
        return {"T": "t", "S": self.symbol, **self.rest(), "t": self.stamp()}

    def correction(self, corrected: Print, template: dict[str, Any]) -> dict[str, Any]:
        """A ``T: c`` message, shaped like ``template`` (the captured one), saying this
        print was ``corrected``; stamped with this print's time."""
        return {
            **template,
            "S": self.symbol,
            "x": self.exchange,
            "oi": self.trade_id,
            "op": self.price,
            "os": self.size,
            "oc": list(self.conditions),
            "ci": corrected.trade_id,
            "cp": corrected.price,
            "cs": corrected.size,
            "cc": list(corrected.conditions),
            "z": self.tape,
            "t": self.stamp(),
        }

    def cancel(self, template: dict[str, Any], action: str = "C") -> dict[str, Any]:
        """A ``T: x`` message shaped like ``template`` cancelling (``C``) this print."""
        return {
            **template,
            "S": self.symbol,
            "i": self.trade_id,
            "x": self.exchange,
            "p": self.price,
            "s": self.size,
            "a": action,
            "z": self.tape,
            "t": self.stamp(),
        }


def tape_from_rest(
    trade: dict[str, Any], symbol: str, count: int, start: datetime, step: timedelta
) -> list[Print]:
    """``count`` prints shaped like a captured REST trade (its exchange, conditions, taker
    side, price level and id), ``step`` apart from ``start``, ids ascending."""
    return [
        Print(
            symbol=symbol,
            ts=start + step * k,
            price=round(float(trade["p"]) * (1 + 0.0001 * ((k * 7) % 11 - 5)), 2),
            size=float(trade["s"]) * (1 + k % 5),
            trade_id=int(trade["i"]) + k,
            exchange=trade.get("x", "D"),
            conditions=tuple(trade.get("c", ())),
            taker=trade.get("tks"),
        )
        for k in range(count)
    ]


def tape_from_capture(
    capture: dict[str, Any], count: int, symbol: str = "AAPL", start: datetime | None = None
) -> list[Print]:
    """``count`` prints shaped like the captured trade, 10 ms apart, ids ascending, from
    the capture's time or ``start``."""
    template = next(
        m
        for step in capture["session"]
        if step["dir"] == "server"
        for m in step["frame"]
        if m["T"] == "t"
    )
    start = start or datetime.fromisoformat(template["t"])
    return [
        Print(
            symbol=symbol,
            ts=start + timedelta(milliseconds=10 * k),
            price=round(template["p"] + 0.01 * ((k * 7) % 11 - 5), 2),
            size=float(template["s"] + k % 5),
            trade_id=template["i"] + k,
            exchange=template["x"],
            conditions=tuple(template["c"]),
        )
        for k in range(count)
    ]


def crypto_tape_from_capture(
    capture: dict[str, Any], count: int, symbol: str = "BTC/USD", start: datetime | None = None
) -> list[Print]:
    """``count`` crypto prints shaped like the captured one (fractional sizes, the taker
    side alternating by a fixed pattern), 10 ms apart, ids ascending from the captured id."""
    template = capture["trade"]
    start = start or datetime.fromisoformat(template["t"])
    return [
        Print(
            symbol=symbol,
            ts=start + timedelta(milliseconds=10 * k),
            price=round(template["p"] + 0.001 * ((k * 7) % 11 - 5), 3),
            size=round(template["s"] / (1 + k % 7), 9),
            trade_id=template["i"] + k,
            taker="B" if (k * 5) % 3 else template["tks"],
        )
        for k in range(count)
    ]


def subscription_ack(sub: dict[str, Any], crypto: bool) -> dict[str, Any]:
    """The server's answer to a subscribe: corrections and cancels follow every stock trade
    channel; the crypto stream has order books instead and neither of those."""
    trades, quotes = sub.get("trades", []), sub.get("quotes", [])
    if crypto:
        return {
            "T": "subscription",
            "trades": trades,
            "quotes": quotes,
            "orderbooks": [],
            "bars": [],
            "updatedBars": [],
            "dailyBars": [],
        }
    return {
        "T": "subscription",
        "trades": trades,
        "quotes": quotes,
        "bars": [],
        "updatedBars": [],
        "dailyBars": [],
        "statuses": [],
        "lulds": [],
        "corrections": trades,
        "cancelErrors": trades,
    }


def to_wire(messages: list[dict[str, Any]], use_msgpack: bool) -> bytes | str:
    if use_msgpack:
        return msgpack.packb(messages, datetime=False)
    plain = [
        {
            k: (rfc3339(v.to_datetime()) if isinstance(v, msgpack.Timestamp) else v)
            for k, v in m.items()
        }
        for m in messages
    ]
    return json.dumps(plain)


@dataclass
class FakeAlpaca:
    key: str = "test-key"
    secret: str = "test-secret"
    tape: list[Print] = field(default_factory=list)
    crypto_tape: list[Print] = field(default_factory=list)
    # per accepted connection, in order: the steps to play after the subscription ack
    sessions: list[list[tuple[Any, ...]]] = field(default_factory=list)
    crypto_sessions: list[list[tuple[Any, ...]]] = field(default_factory=list)
    # auth answers for the next connections (an error code instead of "authenticated")
    refuse_auth: list[int] = field(default_factory=list)
    page_size: int = 7  # small REST pages so pagination is exercised
    # sizes of the next pages (shorter than the limit before the end, as Alpaca does)
    page_sizes: list[int] = field(default_factory=list)
    # page tokens ("" = the first page) whose next request fails once with a 500
    fail_pages: list[str] = field(default_factory=list)
    # page tokens answered 500 until the test clears them (an outage mid-day)
    down_pages: set[str] = field(default_factory=set)
    # page tokens answered once with a body that is not JSON (a proxy's error page)
    garbage_pages: list[str] = field(default_factory=list)
    # bodies served as they are, in order, before anything from the tape (captures)
    verbatim: list[bytes] = field(default_factory=list)
    # rate limit: requests per window, the window, and 429s to answer whatever the budget
    rate_limit: int = 200
    rate_window_s: float = 60.0
    answer_429: int = 0
    # what clients did
    connections: int = 0
    crypto_connections: int = 0
    client_messages: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)
    rest_requests: list[dict[str, str]] = field(default_factory=list)
    rate_limited: int = 0  # 429s answered
    _window_start: float = 0.0
    _window_used: int = 0
    ws_port: int = 0
    rest_port: int = 0

    def reset(self) -> None:
        self.tape, self.sessions, self.refuse_auth, self.fail_pages = [], [], [], []
        self.page_size, self.page_sizes, self.down_pages = 7, [], set()
        self.garbage_pages, self.verbatim = [], []
        self.rate_limit, self.rate_window_s, self.answer_429, self.rate_limited = 200, 60.0, 0, 0
        self._window_start, self._window_used = 0.0, 0
        self.crypto_tape, self.crypto_sessions = [], []
        self.connections = self.crypto_connections = 0
        self.client_messages, self.content_types, self.rest_requests = [], [], []

    # --- WebSocket --------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        content_type = ws.request.headers.get("Content-Type") if ws.request else None
        self.content_types.append(content_type)
        use_msgpack = content_type == "application/msgpack"

        async def send(messages: list[dict[str, Any]]) -> None:
            await ws.send(to_wire(messages, use_msgpack))

        def decode(raw: bytes | str) -> dict[str, Any]:
            return json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw)

        crypto = ws.request is not None and ws.request.path.startswith("/v1beta3/crypto")
        tape = self.crypto_tape if crypto else self.tape
        if crypto:
            self.crypto_connections += 1
        else:
            self.connections += 1
        await send([{"T": "success", "msg": "connected"}])
        auth = decode(await ws.recv())
        self.client_messages.append(auth)
        if auth.get("action") != "auth":
            await send([{"T": "error", "code": 401, "msg": ERROR_MESSAGES[401]}])
            return
        if self.refuse_auth:
            code = self.refuse_auth.pop(0)
            await send([{"T": "error", "code": code, "msg": ERROR_MESSAGES[code]}])
            await ws.close()
            return
        if (auth.get("key"), auth.get("secret")) != (self.key, self.secret):
            await send([{"T": "error", "code": 402, "msg": ERROR_MESSAGES[402]}])
            await ws.close()
            return
        await send([{"T": "success", "msg": "authenticated"}])
        sub = decode(await ws.recv())
        self.client_messages.append(sub)
        await send([subscription_ack(sub, crypto)])
        sessions = self.crypto_sessions if crypto else self.sessions
        steps = sessions.pop(0) if sessions else []
        for step in steps:
            kind = step[0]
            if kind == "frame":
                await send(step[1])
            elif kind == "trades":  # tape[start:end], one frame of `batch` prints at a time
                _, start, end, *rest = step
                batch = rest[0] if rest else 1
                prints = tape[start:end]
                for k in range(0, len(prints), batch):
                    await send([p.stream() for p in prints[k : k + batch]])
            elif kind == "raw":
                await ws.send(step[1])
            elif kind == "error":
                await send([{"T": "error", "code": step[1], "msg": ERROR_MESSAGES[step[1]]}])
            elif kind == "wait":
                await asyncio.sleep(step[1])
            elif kind == "drop":  # the network dies: no close frame
                ws.transport.abort()
                return
            elif kind == "close":
                await ws.close()
                return
        # stay open (silent) until the client leaves
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self.client_messages.append(decode(raw))

    # --- REST -------------------------------------------------------------------------

    def _rate_headers(self) -> tuple[bool, dict[str, str]]:
        """Count this request in the window; (over the budget?, the X-RateLimit headers)."""
        now = time.time()
        if now >= self._window_start + self.rate_window_s:
            self._window_start, self._window_used = now, 0
        self._window_used += 1
        over = self._window_used > self.rate_limit
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - self._window_used)),
            "X-RateLimit-Reset": str(int(self._window_start + self.rate_window_s + 0.999)),
        }
        return over, headers

    async def _trades(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.rest_requests.append({**params, "path": request.path})
        if (request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")) != (
            self.key,
            self.secret,
        ):
            return web.json_response(
                {"code": 40110000, "message": "request is not authorized"}, status=401
            )
        over, headers = self._rate_headers()
        if over or self.answer_429 > 0:
            self.answer_429 = max(0, self.answer_429 - 1)
            self.rate_limited += 1
            return web.json_response(
                {"code": 42910000, "message": "rate limit exceeded"}, status=429, headers=headers
            )
        token = params.get("page_token", "")
        if token in self.fail_pages or token in self.down_pages:
            if token in self.fail_pages:
                self.fail_pages.remove(token)
            return web.json_response(
                {"message": "internal server error"}, status=500, headers=headers
            )
        if token in self.garbage_pages:
            self.garbage_pages.remove(token)
            return web.Response(text="<html>502 Bad Gateway</html>", headers=headers)
        if self.verbatim:
            body = self.verbatim.pop(0)
            return web.Response(body=body, content_type="application/json", headers=headers)
        return web.json_response(self._page(request.path, params, token), headers=headers)

    def _page(self, path: str, params: dict[str, str], token: str) -> dict[str, Any]:
        crypto = "crypto" in path
        symbols = params.get("symbols", "").split(",")
        start = datetime.fromisoformat(params["start"]) if "start" in params else None
        end = datetime.fromisoformat(params["end"]) if "end" in params else None
        limit = min(int(params.get("limit") or 1000), self.page_size)
        matches = [
            p
            for p in [*self.tape, *self.crypto_tape]
            if p.crypto == crypto
            and p.symbol in symbols
            and (start is None or p.ts >= start)
            and (end is None or p.ts < end)
        ]
        matches.sort(key=lambda p: (p.symbol, p.ts))
        offset = int(token or 0)
        size = min(limit, self.page_sizes.pop(0)) if self.page_sizes else limit
        page = matches[offset : offset + size]
        body: dict[str, Any] = {"trades": {}, "next_page_token": None}
        for p in page:
            body["trades"].setdefault(p.symbol, []).append(p.rest())
        if offset + size < len(matches):
            body["next_page_token"] = str(offset + size)
        return body

    # --- lifecycle (run on the fake's own loop) --------------------------------------

    async def _latest_crypto_trades(self, request: web.Request) -> web.Response:
        """``/v1beta3/crypto/us/latest/trades``: each asked pair's newest print."""
        symbols = request.query.get("symbols", "").split(",")
        latest = {p.symbol: p.rest() for p in sorted(self.crypto_tape, key=lambda p: p.ts)}
        return web.json_response({"trades": {s: latest[s] for s in symbols if s in latest}})

    async def start(self) -> None:
        self._ws_server = await serve(self._handler, "127.0.0.1", 0)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        app = web.Application()
        app.router.add_get("/v2/stocks/trades", self._trades)
        app.router.add_get("/v1beta3/crypto/us/trades", self._trades)
        app.router.add_get("/v1beta3/crypto/us/latest/trades", self._latest_crypto_trades)
        self._runner, self.rest_port = await start_app(app)

    async def stop(self) -> None:
        self._ws_server.close()
        await self._ws_server.wait_closed()
        await self._runner.cleanup()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v2/iex"

    @property
    def crypto_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v1beta3/crypto/us"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


# --- the client side of a test -------------------------------------------------------------


def settings_for(fake: FakeAlpaca, **overrides: Any) -> Settings:
    """Settings pointing every Alpaca URL at ``fake``, with short waits."""
    base = Settings(_env_file=None, ALPACA_API_KEY=fake.key, ALPACA_SECRET_KEY=fake.secret)
    values = {
        "alpaca_stream_url": fake.ws_url,
        "alpaca_crypto_stream_url": fake.crypto_ws_url,
        "alpaca_data_url": fake.rest_url,
        "alpaca_slot_wait_seconds": 0.05,
        "provider_backoff_max_seconds": 0.2,
        "alpaca_backfill_overlap_seconds": 0.05,
    }
    values.update(overrides)
    return base.model_copy(update=values)


async def collect(provider: Any, count: int, timeout: float = 8.0) -> list[Any]:
    """Trades and amendments, in the order the provider yields them, until ``count`` of
    them arrived (or the timeout); then the provider is stopped."""
    from core.events import Trade, TradeAmendment

    out: list[Any] = []

    async def consume() -> None:
        async for event in provider:
            if isinstance(event, Trade | TradeAmendment):
                out.append(event)
                if len(out) >= count:
                    provider.stop()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consume(), timeout)
    return out
