"""Every refusal of the API as ``{"error": "<one line>"}``: invalid parameters and bodies (400,
with the field and the reason), unknown symbols, strategies and runs (404), a database that is
down (503, while the live feed goes on), and the router's own 404/405."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from streaming.web.models.strategy_changes import CONDITION_TAGS, DEFINITION_TAGS
from streaming.web.queries import NotFound, UnknownSymbol

log = logging.getLogger(__name__)
# parts of an error's location that name a variant of a union rather than a key
UNION_PARTS = frozenset(
    {*DEFINITION_TAGS, *CONDITION_TAGS, "constrained-str", "str", "int", "float", "bool", "none"}
)
LOCATION_PREFIXES = frozenset({"body", "query", "path", "header"})


def answer(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc[1:] if str(p) not in UNION_PARTS] if loc else []
    if loc and str(loc[0]) not in LOCATION_PREFIXES:
        parts = [str(p) for p in loc if str(p) not in UNION_PARTS]
    return ".".join(parts)


def _expected(ctx: Mapping[str, Any]) -> str:
    """``'1m', '5m' or '1d'`` (pydantic's wording) → ``1m, 5m, 1d``."""
    found = re.findall(r"'([^']*)'", str(ctx.get("expected") or ctx.get("expected_tags") or ""))
    return ", ".join(found)


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as the engine words its own: ``<field> must be …, got …``."""
    kind, path = error.get("type", ""), _path(error.get("loc", ()))
    given = error.get("input")
    if kind == "json_invalid":
        return "the body is not JSON"
    if kind == "model_attributes_type" and path == "":
        return "the body must be a JSON object"
    if kind == "missing":
        return f"{path} is required" if path else "a JSON body is required"
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        name = f"{path}.type" if kind == "union_tag_invalid" else path
        shown = error.get("ctx", {}).get("tag", given)
        return f"{name} must be one of {_expected(error.get('ctx', {}))}, got {shown!r}"
    if kind == "union_tag_not_found":
        return f"{path} needs a type: one of {_expected(error.get('ctx', {}))}"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if message[:1].isupper():
        message = message[0].lower() + message[1:]
    return f"{path} {message}" if path else message


def summarize(errors: Iterable[Mapping[str, Any]]) -> str:
    """Unknown keys together, then the first problem of each other field."""
    unknown, lines, seen = [], [], set()
    for error in errors:
        if error.get("type") == "extra_forbidden":
            unknown.append(_path(error.get("loc", ())))
            continue
        path = _path(error.get("loc", ()))
        if path not in seen:
            seen.add(path)
            lines.append(describe(error))
    if unknown:
        lines.insert(0, f"unknown fields: {', '.join(unknown)}")
    return "; ".join(lines)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return answer(400, summarize(exc.errors()))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return answer(exc.status_code, str(exc.detail), headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    what = f"unknown symbol {exc}" if isinstance(exc, UnknownSymbol) else str(exc)
    return answer(404, what)


async def _bad_input(request: Request, exc: Exception) -> Response:
    return answer(400, str(exc))


async def _database(request: Request, exc: Exception) -> Response:
    if isinstance(exc, psycopg.errors.CheckViolation):
        return answer(400, f"refused by the database: {exc.diag.constraint_name}")
    log.warning("query for %s failed: %s", request.url.path, type(exc).__name__)
    return answer(503, "database unavailable; live updates still flow")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(UnknownSymbol, _not_found)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(ValueError, _bad_input)  # DefinitionError and the queries' own
    app.add_exception_handler(psycopg.Error, _database)


__all__ = ["NotFound", "UnknownSymbol", "answer", "describe", "install", "summarize"]
