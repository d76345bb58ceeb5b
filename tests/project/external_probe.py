"""Run only by test_external_servers.py (the name keeps it out of normal collection): the
suite's fixtures hand out the servers named by TEST_DATABASE_URL / TEST_REDIS_URL."""

import os
from urllib.parse import urlsplit


def _where(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def test_fixtures_use_the_external_servers(db_url: str, redis_url: str) -> None:
    assert _where(db_url) == _where(os.environ["TEST_DATABASE_URL"])
    assert _where(redis_url) == _where(os.environ["TEST_REDIS_URL"])
