"""Who may talk to the dashboard: the Host allowlist on every request and WebSocket
handshake (DNS rebinding), one well-formed Authorization/Host header or a 400 without a
traceback, the token, the cap on WebSocket clients (close 1013) and the security headers."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from streaming.web.hub import CLOSE_TOO_MANY_CLIENTS
from streaming.web.security import (
    BadHeaders,
    allowed_hosts,
    bearer,
    check_request,
    host_name,
)
from tests.support.web_served import serve

# --- pure ---------------------------------------------------------------------------------


def test_host_names_and_the_allowlist() -> None:
    assert host_name("127.0.0.1:8000") == "127.0.0.1"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("LocalHost") == "localhost"
    assert host_name("dash.example.") == "dash.example"
    for bad in ("", "a:b", "[::1", "x/y:80", "user@host"):
        with pytest.raises(BadHeaders):
            host_name(bad)
    hosts = allowed_hosts("0.0.0.0", ["Dash.Example"])
    assert hosts == {"localhost", "127.0.0.1", "::1", "dash.example"}  # wildcard is no name
    assert "10.0.0.5" in allowed_hosts("10.0.0.5")


def test_authorization_must_be_one_bearer_token() -> None:
    assert bearer(None) is None
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    for bad in ("Basic YWxhZGRpbjpvcGVu", "Bearer", "Bearer a b", "abc"):
        with pytest.raises(BadHeaders):
            bearer(bad)


def _scope(path: str, headers: list[tuple[str, str]], **kw: Any) -> dict[str, Any]:
    return {
        "type": kw.get("type", "http"),
        "method": kw.get("method", "GET"),
        "path": path,
        "query_string": kw.get("query", b""),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": kw.get("client", ("127.0.0.1", 5000)),
    }


def test_check_request_decisions() -> None:
    hosts = allowed_hosts("127.0.0.1")
    host = [("Host", "127.0.0.1:8000")]
    json_ct = [("Content-Type", "application/json")]

    def status(scope: dict[str, Any], token: str | None = None, **kw: bool) -> int:
        refusal = check_request(scope, hosts, token, **kw)
        return 200 if refusal is None else refusal.status

    assert status(_scope("/", host)) == 200
    assert status(_scope("/", [("Host", "evil.example:8000")])) == 403
    assert status(_scope("/", [])) == 400
    assert status(_scope("/", [*host, ("Host", "127.0.0.1")])) == 400
    assert status(_scope("/api/symbols", host), "t") == 401
    assert status(_scope("/api/symbols", host, query=b"token=t"), "t") == 200
    assert status(_scope("/api/symbols", [*host, ("Authorization", "Bearer t")]), "t") == 200
    assert status(_scope("/api/health", host), "t") == 200
    assert status(_scope("/", host), "t") == 200  # the page itself; its data needs the token
    # writes: the token always (from loopback too), JSON, same origin
    patch = {"method": "PATCH"}
    signed = [*host, ("Authorization", "Bearer t")]
    assert status(_scope("/api/strategies/1", [*signed, *json_ct], **patch), "t") == 200
    assert status(_scope("/api/strategies/1", [*host, *json_ct], **patch)) == 401  # no token
    assert status(_scope("/api/strategies/1", [*host, *json_ct], **patch), "t") == 401
    assert status(_scope("/api/strategies/1", signed, **patch), "t") == 415
    remote = {"client": ("10.1.1.1", 5000), **patch}
    assert status(_scope("/api/strategies/1", [*signed, *json_ct], **remote), "t") == 200
    assert status(_scope("/api/strategies/1", [*host, *json_ct], **remote), "t") == 401
    evil = [*signed, *json_ct, ("Origin", "http://evil.example")]
    assert status(_scope("/api/strategies/1", evil, **patch), "t") == 403
    big = [*signed, *json_ct, ("Content-Length", str(64 * 1024 + 1))]
    assert status(_scope("/api/strategies/1", big, **patch), "t") == 413
    # a write no route takes is left to the router (405), like a method no route knows
    unrouted = _scope("/api/orders", host, **patch)
    assert status(unrouted, "t", routed=False, reads_open=True) == 200
    assert status(_scope("/api/orders", host, method="TRACE"), "t", reads_open=True) == 200
    # reads_open (a generated token): reads from loopback need none, from elsewhere they do
    assert status(_scope("/api/symbols", host), "t", reads_open=True) == 200
    assert status(_scope("/ws", host, type="websocket"), "t", reads_open=True) == 200
    assert status(_scope("/api/symbols", host, client=("10.1.1.1", 5)), "t", reads_open=True) == 401
    assert (
        status(_scope("/api/strategies/1", [*host, *json_ct], **patch), "t", reads_open=True) == 401
    )
    ws = {"type": "websocket"}
    assert status(_scope("/ws", [*host, ("Origin", "http://127.0.0.1:8000")], **ws)) == 200
    assert status(_scope("/ws", [*host, ("Origin", "http://evil.example")], **ws)) == 403


# --- against the server -------------------------------------------------------------------


def raw_request(port: int, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` as written (duplicated headers and all); status, headers, body (read
    up to Content-Length; nothing more after a 101 switch)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head_part, _, body = data.partition(b"\r\n\r\n")
        lines = head_part.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(lines[0].split()[1])
        length = int(headers.get("content-length", "0")) if status != 101 else 0
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
    return status, headers, body


def test_foreign_host_refused_on_every_route_and_the_websocket(redis_url: str) -> None:
    with serve(redis_url, None, extra_hosts=["dash.example"]) as web:
        port = web.server.port
        for path in ("/", "/api/health", "/static/style.css", "/docs", "/openapi.json"):
            res = httpx.get(f"{web.base}{path}", headers={"Host": "rebound.example"})
            assert res.status_code == 403 and "Host not allowed" in res.json()["error"], path
            assert res.headers["referrer-policy"] == "no-referrer"
        for name in (f"localhost:{port}", f"127.0.0.1:{port}", "dash.example"):
            assert httpx.get(f"{web.base}/", headers={"Host": name}).status_code == 200, name
        handshake = (
            "GET /ws HTTP/1.1\nHost: {}\nUpgrade: websocket\nConnection: Upgrade\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n"
        )
        status, headers, _ = raw_request(port, handshake.format("rebound.example"))
        assert status == 403 and headers["referrer-policy"] == "no-referrer"
        status, _, _ = raw_request(port, handshake.format(f"127.0.0.1:{port}"))
        assert status == 101


def test_duplicated_or_malformed_headers_are_400_without_traceback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with serve(redis_url, None, token="t0k") as web:
        port = web.server.port
        host = f"Host: 127.0.0.1:{port}"
        cases = {
            "two Authorization": f"{host}\nAuthorization: Bearer t0k\nAuthorization: Bearer x\n",
            "two Host": f"{host}\n{host}\nAuthorization: Bearer t0k\n",
            "Basic auth": f"{host}\nAuthorization: Basic dTpw\n",
            "empty bearer": f"{host}\nAuthorization: Bearer\n",
        }
        for what, headers in cases.items():
            for path in ("/api/symbols", "/ws"):
                status, got, body = raw_request(port, f"GET {path} HTTP/1.1\n{headers}")
                assert status == 400, (what, path, status)
                if path != "/ws" or body:
                    assert b"error" in body
                assert got.get("referrer-policy") == "no-referrer"
        status, _, _ = raw_request(port, f"GET /api/health HTTP/1.1\n{host}\n")
        assert status == 200  # the server is fine afterwards
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert "Traceback" not in caplog.text


def test_websocket_clients_are_capped_with_close_1013(redis_url: str) -> None:
    with serve(redis_url, None, max_clients=2) as web:
        url = f"ws://127.0.0.1:{web.server.port}/ws"
        first, second = connect(url), connect(url)
        with connect(url) as third, pytest.raises(ConnectionClosedError) as closed:
            third.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_TOO_MANY_CLIENTS == 1013
        assert "too many dashboard clients (at most 2)" in closed.value.rcvd.reason
        assert web.server.counters()["clients_refused"] == 1
        first.close()
        for _ in range(100):  # the freed place is given to the next client
            if len(web.server.clients) < 2:
                break
            second.ping().wait(0.05)
        with connect(url) as fourth, pytest.raises(TimeoutError):
            fourth.recv(timeout=0.3)  # open and waiting for data, not closed
        second.close()


def test_security_headers_on_every_answer(redis_url: str) -> None:
    with serve(redis_url, None, token="t0k") as web:
        answers = [
            httpx.get(f"{web.base}/"),
            httpx.get(f"{web.base}/static/style.css"),
            httpx.get(f"{web.base}/api/health"),
            httpx.get(f"{web.base}/api/symbols"),  # 401
            httpx.get(f"{web.base}/nowhere"),  # 404
            httpx.get(f"{web.base}/docs"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 200]
    for answer in answers:
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-content-type-options"] == "nosniff"
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "http" not in csp
    assert '<meta name="referrer" content="no-referrer">' in answers[0].text


def test_the_token_never_reaches_the_log(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "n0t-in-logs-9f2c"
    with serve(redis_url, None, token=secret) as web:
        port = web.server.port
        with connect(f"ws://127.0.0.1:{port}/ws?token={secret}"):
            pass
        with pytest.raises(InvalidStatus):
            connect(f"ws://127.0.0.1:{port}/ws?token=wrong-{secret}")
        httpx.get(f"{web.base}/api/symbols", params={"token": secret})
        httpx.get(f"{web.base}/?token={secret}")
    # the test's own clients log their requests; the server's records are the others
    client_side = ("websockets.client", "httpx", "httpcore")
    server = [r for r in caplog.records if not r.name.startswith(client_side)]
    assert caplog.records  # logging was on
    assert not [r.getMessage() for r in server if secret in r.getMessage()]
