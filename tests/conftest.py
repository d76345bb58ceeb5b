"""Shared fixtures: real PostgreSQL and Redis servers (docs/operations.md).

Embedded servers by default; ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point the suite at
external ones. Each test that asks for ``db_url`` gets its own freshly migrated database,
cloned from a template migrated once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from core.service_urls import with_database
from marketflow.embedded.postgres import EmbeddedPostgres
from marketflow.embedded.redis import EmbeddedRedis
from marketflow.embedded.relocated import remove_relocated
from tests.support.paths import CAPTURES
from tests.support.relocated import RelocatedCheck

# A test that asks for one of these needs a live PostgreSQL or Redis (or starts servers of
# its own): it is marked `integration`, so `pytest -m "not integration"` runs the pure tests.
SERVER_FIXTURES = frozenset(
    {
        "pg_admin_url",
        "migrated_template",
        "empty_db_url",
        "db_url",
        "redis_server_url",
        "redis_url",
        "service_home",
    }
)


RELOCATED = RelocatedCheck()


def pytest_sessionstart(session: pytest.Session) -> None:
    RELOCATED.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves no relocated server folder behind (docs/operations.md)."""
    leaked = RELOCATED.leaked()
    if leaked:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = RELOCATED.describe(leaked)
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # `slow` tests are the long integration runs (`marketflow up` end to end)
        if item.get_closest_marker("slow") or SERVER_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def captures() -> Path:
    """Real captures in tests/data (Polymarket, Alpaca, Alpha Vantage, trades); see README."""
    if not CAPTURES.exists():
        pytest.fail(f"captures not found at {CAPTURES}")
    return CAPTURES


@pytest.fixture
def service_home() -> Iterator[Path]:
    """A private folder for servers a test starts itself (a MARKETFLOW_HOME of its own).

    Not under pytest's basetemp: pytest makes that tree 0700, closed to the unprivileged
    account the servers run as when the tests run as root (they would be relocated)."""
    root = Path(tempfile.mkdtemp(prefix="marketflow-test-home-"))
    root.chmod(0o755)  # like a checkout's folder: mkdtemp's 0700 would stand for a private home
    yield root
    remove_relocated(root)  # a test may make part of it private: its servers moved out
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of a real PostgreSQL server for the whole session."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's basetemp: pytest resets that tree to mode 0700, which the
    # unprivileged user the server runs as (when tests run as root) could not traverse.
    root = Path(tempfile.mkdtemp(prefix="marketflow-test-pg-"))
    server = EmbeddedPostgres(root)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        remove_relocated(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    external = os.environ.get("TEST_REDIS_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="marketflow-test-redis-"))
    server = EmbeddedRedis(root)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        remove_relocated(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis URL with an empty database for this test."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushdb()
    client.close()
    yield redis_server_url


def create_database(admin_url: str, template: str | None = None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(query)
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A new, empty database (no migrations) dropped after the test."""
    name = create_database(pg_admin_url)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_url: str) -> Iterator[str]:
    from storage.migrate import upgrade

    name = create_database(pg_admin_url)
    upgrade(with_database(pg_admin_url, name))
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    """A freshly migrated (and seeded) market database of its own for this test."""
    name = create_database(pg_admin_url, template=migrated_template)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)
