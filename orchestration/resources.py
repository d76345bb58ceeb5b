"""Transitional: the Postgres resource moved to ``assets.resources`` (the assets use it as a
type and may not import orchestration). Import it from there; this module goes once the
last importer has moved."""

from assets.resources import PostgresResource

__all__ = ["PostgresResource"]
