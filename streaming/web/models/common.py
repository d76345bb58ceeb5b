"""Types every part of the API shares: the error body, times as the database renders them,
and the text parameters a query may carry.

Times stay the strings the database gave (ISO 8601 with ``+00:00``): a ``datetime`` field
would re-render them (``Z``), and the pages compare them as written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Day = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]

# PostgreSQL text cannot hold NUL; a symbol has a visible character (it is trimmed, then
# upper-cased) and no control character
SYMBOL_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
SymbolText = Annotated[str, Field(min_length=1, max_length=64, pattern=SYMBOL_PATTERN)]
NameText = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class ErrorBody(BaseModel):
    """Every refusal: one line saying what is wrong."""

    error: str = Field(examples=["unknown symbol NOPE"])


class Row(BaseModel):
    """A row of one of our own statements: its columns are the fields."""


class OpenRow(BaseModel):
    """A row that may come from a dbt mart, whose columns the mart decides: the fields
    listed are the ones the pages read, any others pass through."""

    model_config = ConfigDict(extra="allow")


Responses = dict[int | str, dict[str, Any]]  # a route's documented answers beside 200


def error(description: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry answered with ``ErrorBody``."""
    return {"model": ErrorBody, "description": description}
