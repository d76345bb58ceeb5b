"""Who may talk to the dashboard: Host allowlist, token, same origin, security headers.

One ASGI middleware (``Guard``) checks every HTTP request and every WebSocket handshake
before any route runs:

* ``Host`` must name this server (loopback names, the bind host, ``WEB_ALLOWED_HOSTS``):
  a page of another site whose name resolves to 127.0.0.1 (DNS rebinding) is refused (403).
* ``Host``, ``Authorization`` and ``Origin`` must appear at most once and be well formed;
  anything else is a 400 with a one-line reason, never a traceback.
* The token (``Authorization: Bearer <token>`` or ``?token=``) is always there: the one in
  ``MARKETFLOW_API_TOKEN``, else one generated at start and printed in the dashboard's link.
  Every write (POST, PUT, PATCH, DELETE to a route that takes it) needs it, from loopback
  too, and must be same-origin JSON. Reads of the API and the WebSocket need it when it was
  configured, or when the client is not on loopback; a generated token leaves reads from
  this machine open (``reads_open``). A method no route takes is left to the router (405).
* A WebSocket handshake must be same-origin when the browser sends ``Origin``.

Every HTTP answer carries the CSP (nothing from the internet), ``Referrer-Policy:
no-referrer`` (the token never leaves in a Referer), ``nosniff`` and ``frame-ancestors``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 64 * 1024  # a strategy definition is a few hundred bytes
# Nothing on the page may come from the internet; data only from this server.
CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
PUBLIC_API = frozenset({"/api/health"})


class WebConfigError(ValueError):
    """The server cannot start as configured; the message names the setting to change."""


class BadHeaders(ValueError):
    """A request whose headers cannot be read unambiguously (answered 400)."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_config(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise WebConfigError(
            f"the dashboard would listen on {host}, beyond this machine: set "
            "MARKETFLOW_API_TOKEN (clients then pass ?token=...), or bind 127.0.0.1 "
            "with MARKETFLOW_BIND_HOST."
        )


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Names the ``Host`` header may carry: loopback names, the bind host, extra names."""
    names = set(LOOPBACK_NAMES)
    for name in (bind_host, *extra):
        name = name.strip().strip("[]").lower().rstrip(".")
        if name not in WILDCARD_HOSTS:
            names.add(name)
    return frozenset(names)


def host_name(value: str) -> str:
    """The name part of a ``Host`` header value (``[::1]:8000`` → ``::1``); BadHeaders if
    it is not a plain host[:port]."""
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            raise BadHeaders("malformed Host header")
        return name
    name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()) or any(c in name for c in "/@ \\"):
        raise BadHeaders("malformed Host header")
    return name.rstrip(".")


def single_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The one value of header ``name`` (lower-case), None when absent; BadHeaders when it is
    repeated or not text."""
    found = [value for key, value in headers if key.lower() == name]
    if len(found) > 1:
        raise BadHeaders(f"{name.decode()} header given {len(found)} times")
    if not found:
        return None
    try:
        return found[0].decode("ascii")
    except UnicodeDecodeError:
        raise BadHeaders(f"{name.decode()} header is not ASCII") from None


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; BadHeaders otherwise."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise BadHeaders("Authorization must be 'Bearer <token>'")
    return token


def generate_token() -> str:
    """A token for the dashboard's writes: 256 random bits, URL-safe (it travels in a link)."""
    return secrets.token_urlsafe(32)


def token_matches(expected: str | None, given: str | None) -> bool:
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def same_origin(origin: str | None, host: str) -> bool:
    """Browsers send Origin on WebSocket handshakes and cross-site writes and apply no CORS
    to WebSockets: refuse pages of other sites. No Origin: not a browser page."""
    if origin is None:
        return True
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and rest.lower() == host.lower()


def needs_token(path: str) -> bool:
    return path == "/ws" or (path.startswith("/api/") and path not in PUBLIC_API)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    close_code: int = 1008  # policy violation, for a WebSocket already accepted


def check_request(
    scope: Scope,
    hosts: frozenset[str],
    token: str | None,
    *,
    reads_open: bool = False,
    routed: bool = True,
) -> Refusal | None:
    """Decide one HTTP request or WebSocket handshake; None lets it through.

    ``token``: what writes need (None: no write is accepted) and, unless ``reads_open``
    and the client is on loopback, what reads of the API and the WebSocket need.
    ``routed``: a route takes this method here (else the router answers 404/405)."""
    raw: list[tuple[bytes, bytes]] = list(scope.get("headers", ()))
    try:
        host = single_header(raw, b"host")
        if host is None:
            return Refusal(400, "Host header required")
        if host_name(host) not in hosts:
            return Refusal(403, "Host not allowed: open the dashboard by this server's name")
        auth = bearer(single_header(raw, b"authorization"))
        origin = single_header(raw, b"origin")
        content_type = single_header(raw, b"content-type")
        length = single_header(raw, b"content-length")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    except BadHeaders as exc:
        return Refusal(400, str(exc))
    path: str = scope.get("path", "")
    websocket = scope["type"] == "websocket"
    write = not websocket and routed and scope.get("method", "GET") in WRITE_METHODS
    given = auth if auth is not None else (query.get("token") or [None])[0]
    client = scope.get("client") or ("", 0)
    if write:
        if not token_matches(token, given):
            return Refusal(401, "missing or wrong token: open the link printed at start")
    elif (
        token
        and needs_token(path)
        and not (reads_open and is_loopback(str(client[0])))
        and not token_matches(token, given)
    ):
        return Refusal(401, "missing or wrong token")
    if (websocket or write) and not same_origin(origin, host):
        return Refusal(403, "cross-origin request refused")
    if write:
        if not (content_type or "").lower().startswith("application/json"):
            return Refusal(415, "send JSON (Content-Type: application/json)")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return Refusal(413, f"request body too large (at most {MAX_BODY} bytes)")
    return None


def route_takes(app: Any, scope: Scope) -> bool:
    """Whether a route of ``app`` (the application the request is for) takes this method
    at this path: writes elsewhere are answered by the router (404, 405), not refused."""
    router = getattr(app, "router", None)
    return any(route.matches(scope)[0] == Match.FULL for route in getattr(router, "routes", ()))


def _with_headers(message: Message) -> Message:
    headers = [
        (k, v) for k, v in message.get("headers", []) if k.lower() not in dict(SECURITY_HEADERS)
    ]
    if not any(k.lower() == b"cache-control" for k, _ in headers):
        headers.append((b"cache-control", b"no-cache"))
    return {**message, "headers": [*headers, *SECURITY_HEADERS]}


class Guard:
    """ASGI middleware applying ``check_request`` and the security headers."""

    def __init__(
        self, app: ASGIApp, *, hosts: frozenset[str], token: str | None, reads_open: bool = False
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.token = token
        self.reads_open = reads_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message = _with_headers(message)
            await send(message)

        routed = scope.get("method") not in WRITE_METHODS or route_takes(scope.get("app"), scope)
        refusal = check_request(
            scope, self.hosts, self.token, reads_open=self.reads_open, routed=routed
        )
        if refusal is None:
            await self.app(scope, receive, secured)
        elif scope["type"] == "http":
            await _http_refusal(refusal, secured)
        else:
            await _ws_refusal(scope, refusal, secured)


def _body(refusal: Refusal) -> bytes:
    return json.dumps({"error": refusal.reason}).encode()


async def _http_refusal(refusal: Refusal, send: Send) -> None:
    body = _body(refusal)
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _ws_refusal(scope: Scope, refusal: Refusal, send: Send) -> None:
    # answer the handshake with the HTTP status itself where the server supports it
    extensions: dict[str, Any] = scope.get("extensions") or {}
    if "websocket.http.response" in extensions:
        body = _body(refusal)
        await send(
            {
                "type": "websocket.http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": refusal.close_code})
