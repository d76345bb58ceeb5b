"""A local Alpha Vantage ``/query`` endpoint: plays scripted answers (JSON bodies, throttle
notes, HTTP errors) in order and records each request's parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.http_app import start_app

NOTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls "
    "per minute and 500 calls per day."
}
INFORMATION = {
    "Information": "We have detected your API key as TEST and our standard API rate limit "
    "is 25 requests per day."
}
ERROR = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_INTRADAY."
}


@dataclass
class FakeAlphaVantage:
    key: str = "demo-key"
    # per symbol, the answers to play in order; the last one repeats
    answers: dict[str, list[Any]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def reset(self) -> None:
        self.answers, self.requests = {}, []

    async def _query(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.requests.append(params)
        if params.get("apikey") != self.key:
            return web.json_response(
                {"Error Message": "the parameter apikey is invalid or missing."}
            )
        queue = self.answers.get(params.get("symbol", ""), [ERROR])
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, int):
            return web.Response(status=answer, text="upstream error")
        if isinstance(answer, str):
            return web.Response(text=answer, content_type="application/json")
        return web.Response(text=json.dumps(answer), content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/query", self._query)
        self._runner, self.port = await start_app(app)

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/query"
