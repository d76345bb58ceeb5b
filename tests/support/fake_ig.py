"""A local IG REST gateway (``/gateway/deal``): ``POST /session`` v2 issuing CST and
X-SECURITY-TOKEN, ``GET /markets/{epic}`` v3 and ``GET /markets?searchTerm=`` v1, with the
documented shapes (docs/providers.md) and error bodies (``errorCode``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.http_app import start_app


def market(
    epic: str,
    name: str,
    bid: float | None,
    offer: float | None,
    status: str = "TRADEABLE",
    update_time: str = "10:15:01",
) -> dict[str, Any]:
    return {
        "instrument": {
            "epic": epic,
            "name": name,
            "type": "SHARES",
            "currencies": [
                {"code": "GBX", "symbol": "p", "baseExchangeRate": 1.0, "isDefault": True}
            ],
        },
        "dealingRules": {"minDealSize": {"unit": "POINTS", "value": 1.0}},
        "snapshot": {
            "marketStatus": status,
            "netChange": 0.42,
            "percentageChange": 0.58,
            "updateTime": update_time,
            "delayTime": 0,
            "bid": bid,
            "offer": offer,
            "high": (offer or 0) + 1,
            "low": (bid or 0) - 1,
            "binaryOdds": None,
            "decimalPlacesFactor": 2,
            "scalingFactor": 1,
            "controlledRiskExtraSpread": 0,
        },
    }


@dataclass
class FakeIg:
    api_key: str = "ig-key"
    username: str = "trader"
    password: str = "ig-password"
    markets: dict[str, Any] = field(default_factory=dict)  # epic → snapshot or list of them
    search: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_logins: list[int] = field(default_factory=list)  # statuses for the next logins
    fail_markets: list[int] = field(default_factory=list)  # statuses for the next GETs
    suspended: bool = False
    logins: int = 0
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, VERSION
    port: int = 0
    _tokens: set[tuple[str, str]] = field(default_factory=set)
    _counter: Any = field(default_factory=itertools.count)

    def reset(self) -> None:
        self.markets, self.search = {}, {}
        self.fail_logins, self.fail_markets = [], []
        self.suspended, self.logins, self.calls = False, 0, []
        self._tokens = set()

    def expire_sessions(self) -> None:
        self._tokens.clear()

    def _log(self, request: web.Request) -> None:
        self.calls.append((request.method, request.path_qs, request.headers.get("VERSION")))

    async def _session(self, request: web.Request) -> web.Response:
        self._log(request)
        if request.headers.get("X-IG-API-KEY") != self.api_key:
            return web.json_response({"errorCode": "error.security.api-key-invalid"}, status=403)
        if request.headers.get("VERSION") != "2":
            return web.json_response({"errorCode": "invalid.version"}, status=400)
        if self.fail_logins:
            return web.json_response({"errorCode": "system.error"}, status=self.fail_logins.pop(0))
        if self.suspended:
            return web.json_response({"errorCode": "error.security.client-suspended"}, status=403)
        body = await request.json()
        if (body.get("identifier"), body.get("password")) != (self.username, self.password):
            return web.json_response({"errorCode": "error.security.invalid-details"}, status=401)
        self.logins += 1
        n = next(self._counter)
        cst, token = f"cst-{n}", f"xst-{n}"
        self._tokens.add((cst, token))
        return web.json_response(
            {
                "accountType": "SPREADBET",
                "currentAccountId": "ABC123",
                "lightstreamerEndpoint": "https://demo-apd.marketdatasystems.com",
                "accountInfo": {
                    "balance": 10000.0,
                    "deposit": 0.0,
                    "profitLoss": 0.0,
                    "available": 10000.0,
                },
                "currencyIsoCode": "GBP",
            },
            headers={"CST": cst, "X-SECURITY-TOKEN": token},
        )

    def _authorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-IG-API-KEY") != self.api_key:
            return web.json_response({"errorCode": "error.security.api-key-invalid"}, status=403)
        pair = (request.headers.get("CST", ""), request.headers.get("X-SECURITY-TOKEN", ""))
        if pair not in self._tokens:
            return web.json_response(
                {"errorCode": "error.security.client-token-invalid"}, status=401
            )
        return None

    async def _market(self, request: web.Request) -> web.Response:
        self._log(request)
        denied = self._authorised(request)
        if denied is not None:
            return denied
        if self.fail_markets:
            return web.json_response({"errorCode": "system.error"}, status=self.fail_markets.pop(0))
        epic = request.match_info["epic"]
        if epic not in self.markets:
            return web.json_response(
                {"errorCode": "error.service.marketdata.instrument.epic.unavailable"}, status=404
            )
        answer = self.markets[epic]
        if isinstance(answer, list):  # a sequence of snapshots, one per poll; the last repeats
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return web.json_response(answer)

    async def _search(self, request: web.Request) -> web.Response:
        self._log(request)
        denied = self._authorised(request)
        if denied is not None:
            return denied
        term = request.query.get("searchTerm", "").upper()
        return web.json_response({"markets": self.search.get(term, [])})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/gateway/deal/session", self._session)
        app.router.add_get("/gateway/deal/markets/{epic}", self._market)
        app.router.add_get("/gateway/deal/markets", self._search)
        self._runner, self.port = await start_app(app)

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/gateway/deal"
