"""IG REST session: ``POST /session`` (v2) for CST / X-SECURITY-TOKEN, then authenticated
GETs with one re-authentication on 401 (tokens expire). Thin I/O; policy lives in ``ig``."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import SecretStr

from streaming.providers.base import ProviderError

log = logging.getLogger(__name__)

JSON = "application/json; charset=UTF-8"
# error codes after which retrying would only lock the account or waste the allowance
FATAL_AUTH_CODES = (
    "error.security.invalid-details",
    "error.security.client-suspended",
    "client-suspended",
    "error.security.api-key-invalid",
    "error.security.api-key-disabled",
    "error.security.api-key-revoked",
)


class IgError(Exception):
    """A failed IG call (transient: counted toward the cooldown)."""


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if isinstance(body, dict):
        return str(body.get("errorCode", ""))[:120]
    return ""


class IgSession:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: SecretStr,
        username: str,
        password: SecretStr,
    ) -> None:
        self._client = client
        self.base_url = base_url
        self._api_key = api_key
        self._username = username
        self._password = password
        self._tokens: dict[str, str] | None = None
        self.logins = 0

    @property
    def authenticated(self) -> bool:
        return self._tokens is not None

    def _headers(self, version: int) -> dict[str, str]:
        headers = {
            "X-IG-API-KEY": self._api_key.get_secret_value(),
            "VERSION": str(version),
            "Accept": JSON,
            "Content-Type": JSON,
        }
        if self._tokens:
            headers.update(self._tokens)
        return headers

    async def login(self) -> None:
        self._tokens = None
        try:
            response = await self._client.post(
                f"{self.base_url}/session",
                headers=self._headers(2),
                json={
                    "identifier": self._username,
                    "password": self._password.get_secret_value(),
                },
            )
        except httpx.HTTPError as exc:
            raise IgError(f"POST /session failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            code = _error_code(response)
            if any(fatal in code for fatal in FATAL_AUTH_CODES):
                raise ProviderError(
                    f"IG refused the login ({response.status_code} {code}): check IG_API_KEY, "
                    "IG_USERNAME, IG_PASSWORD and IG_DEMO (demo and live keys differ); not "
                    "retrying, so the account is not locked by repeated attempts"
                )
            raise IgError(f"POST /session answered {response.status_code} {code}")
        cst = response.headers.get("CST")
        token = response.headers.get("X-SECURITY-TOKEN")
        if not cst or not token:
            raise IgError("POST /session answered without CST / X-SECURITY-TOKEN headers")
        self._tokens = {"CST": cst, "X-SECURITY-TOKEN": token}
        self.logins += 1
        log.info("ig: logged in at %s", self.base_url)

    async def get(self, path: str, version: int, params: dict[str, str] | None = None) -> Any:
        """JSON of an authenticated GET; logs in first if needed and once more on a 401."""
        for attempt in (1, 2):
            if self._tokens is None:
                await self.login()
            try:
                response = await self._client.get(
                    f"{self.base_url}{path}", headers=self._headers(version), params=params
                )
            except httpx.HTTPError as exc:
                raise IgError(f"GET {path} failed: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1:
                log.info("ig: session expired (%s); logging in again", _error_code(response))
                self._tokens = None
                continue
            if response.status_code == 404:
                raise LookupError(f"GET {path}: {_error_code(response) or 'not found'}")
            if response.status_code != 200:
                raise IgError(f"GET {path} answered {response.status_code} {_error_code(response)}")
            try:
                return response.json()
            except ValueError:
                raise IgError(f"GET {path} answered non-JSON") from None
        raise IgError(f"GET {path}: still unauthorised after logging in again")
