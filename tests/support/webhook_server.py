"""A real HTTP server on loopback standing in for Slack, Discord or a JSON webhook: it
records every request (path, JSON body, arrival time) and answers from a script of
responses per path (status and headers; 200 once the script is used up)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    body: Any
    at: float  # time.monotonic()
    status: int


@dataclass
class WebhookServer:
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    delay_s: float = 0.0  # each answer waits this long (a slow webhook)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                steps = server.script.get(self.path) or []
                status, headers = steps.pop(0) if steps else (200, {})
                with server.lock:
                    server.received.append(Received(self.path, body, time.monotonic(), status))
                if server.delay_s:
                    time.sleep(server.delay_s)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def bodies(self, path: str, status: int | None = 200) -> list[Any]:
        with self.lock:
            return [r.body for r in self.received if r.path == path and r.status == status]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
