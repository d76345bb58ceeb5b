"""Where PostgreSQL and Redis are, and how to show their URLs safely (docs/operations.md).

Pure configuration: the environment first (``DATABASE_URL``, ``REDIS_URL``), then the
``services.json`` that ``marketflow services`` / ``marketflow up`` write under
``MARKETFLOW_HOME`` for the embedded servers. Nothing here starts a server; that is
``marketflow.services``. Any layer may call this: providers, ingest, Dagster resources and
the commands all find the servers the same way.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from core.settings import Settings

STATE_FILE = "services.json"  # under MARKETFLOW_HOME, mode 0600: the URLs carry passwords


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message says what to do next."""


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


_SECRET_PARAM = re.compile(r"((?:password|passwd|pass|sslpassword)=)[^&\s]*", re.IGNORECASE)
# the password of any ``scheme://user:password@host`` inside free text
_URL_PASSWORD = re.compile(r"(://[^:/@\s\"']*:)[^@\s\"']*(@)")


def redact_text(text: str) -> str:
    """Free text (an exception message) with every URL or DSN password masked.

    libpq echoes a connection string it cannot parse whole, password included: any error
    text that may carry a database or Redis URL goes through this before it is shown."""
    return _SECRET_PARAM.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", text))


def redact_url(url: str) -> str:
    """A URL safe to print or log: the password is masked, also as a query parameter.

    A string that is not a URL (a libpq ``key=value`` DSN) is masked the same way instead
    of being parsed: SQLAlchemy's parse error would otherwise carry it whole.
    """
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # any unparseable string: mask it, never raise it
        shown = url
    return redact_text(shown)


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str  # the market-data database
    dagster_database_url: str  # Dagster's instance storage: same server, another database
    redis_url: str
    embedded_postgres: bool = False
    embedded_redis: bool = False

    def __repr__(self) -> str:
        # reprs end up in logs and tracebacks: URLs carry passwords, show them masked
        return (
            f"ServiceUrls(database_url={redact_url(self.database_url)!r}, "
            f"dagster_database_url={redact_url(self.dagster_database_url)!r}, "
            f"redis_url={redact_url(self.redis_url)!r}, "
            f"embedded_postgres={self.embedded_postgres}, embedded_redis={self.embedded_redis})"
        )

    def describe(self) -> list[tuple[str, str]]:
        return [
            ("PostgreSQL", redact_url(self.database_url)),
            ("Dagster storage", redact_url(self.dagster_database_url)),
            ("Redis", redact_url(self.redis_url)),
        ]


def _state(settings: Settings) -> dict[str, object]:
    path = settings.state_dir / STATE_FILE
    if path.exists():
        with contextlib.suppress(ValueError):
            return dict(json.loads(path.read_text()))
    return {}


def database_urls(settings: Settings) -> tuple[str, str]:
    """(market database, Dagster database) without asking for Redis: for the commands that
    only need PostgreSQL (backup, restore)."""
    state = _state(settings)
    database_url = settings.database_url or state.get("database_url")
    if not database_url:
        raise ServiceError(
            "no PostgreSQL configured: set DATABASE_URL, or start the embedded servers "
            "with `marketflow services` (or `marketflow up`)."
        )
    dagster_url = state.get("dagster_database_url") if not settings.database_url else None
    return str(database_url), str(
        dagster_url or with_database(str(database_url), settings.dagster_db)
    )


def resolve_urls(settings: Settings) -> ServiceUrls:
    """The URLs every command uses: the environment first, then running embedded servers."""
    database_url, dagster_url = database_urls(settings)
    redis_url = settings.redis_url or _state(settings).get("redis_url")
    if not redis_url:
        raise ServiceError(
            "no Redis configured: set REDIS_URL, or start the embedded servers "
            "with `marketflow services` (or `marketflow up`)."
        )
    return ServiceUrls(
        database_url=database_url,
        dagster_database_url=dagster_url,
        redis_url=str(redis_url),
        embedded_postgres=settings.database_url is None,
        embedded_redis=settings.redis_url is None,
    )
