"""``/openapi.json``: FastAPI's document of the routes in ``api.py``, plus what the ``Guard``
middleware decides before any route runs, which FastAPI cannot see: who needs the token
(writes always; reads too when ``MARKETFLOW_API_TOKEN`` is set) and that refusals are
``{"error": ...}`` with status 400, never FastAPI's 422."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from streaming.web.security import PUBLIC_API, READ_METHODS

TITLE = "marketflow dashboard API"
DESCRIPTION = (
    "Snapshots for the pages; live updates come over the /ws WebSocket. Every change "
    "(PATCH, PUT) needs the token (Authorization: Bearer <token> or ?token=), printed in "
    "the dashboard's link at start. Reads from this machine need it only when "
    "MARKETFLOW_API_TOKEN is set; off loopback every /api route but /api/health needs it."
)
SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer"},
    "query_token": {"type": "apiKey", "in": "query", "name": "token"},
}
TOKEN: list[dict[str, list[str]]] = [{"bearer": []}, {"query_token": []}]
FASTAPI_VALIDATION = ("ValidationError", "HTTPValidationError")


def document(app: FastAPI, reads_open: bool) -> dict[str, Any]:
    spec = get_openapi(title=TITLE, version="1", description=DESCRIPTION, routes=app.routes)
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            operation.get("responses", {}).pop("422", None)
            if path in PUBLIC_API:
                continue
            read = method.upper() in READ_METHODS
            # {} is "no credentials": reads from loopback when the token only guards writes
            operation["security"] = [{}, *TOKEN] if read and reads_open else TOKEN
    components = spec.setdefault("components", {})
    components["securitySchemes"] = SCHEMES
    schemas = components.get("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return spec


def install(app: FastAPI, reads_open: bool) -> None:
    """Serve ``document`` (built once, on first request) as the app's OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, reads_open)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
