"""Only marketflow can use the embedded servers: passwords, loopback, disabled Redis
commands, an unprivileged service account as root, and no permission changed outside
MARKETFLOW_HOME (docs/operations.md, security model)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from core.service_urls import ServiceUrls
from core.settings import Settings
from marketflow.embedded import service_user
from marketflow.embedded.process import process_uid
from marketflow.services import Services

AS_ROOT = os.geteuid() == 0


def _modes(path: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode, owner and group of ``path`` and every folder above it."""
    out = {}
    for p in [path, *path.parents]:
        st = p.stat()
        out[p] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


@pytest.fixture
def started(service_home: Path) -> Iterator[tuple[Services, ServiceUrls]]:
    services = Services(Settings(_env_file=None, MARKETFLOW_HOME=str(service_home / "home")))
    urls = services.start()
    try:
        yield services, urls
    finally:
        services.stop()


def test_postgres_requires_the_generated_password(started) -> None:
    services, urls = started
    url = make_url(urls.database_url)
    assert url.password and url.host == "127.0.0.1"
    without = f"postgresql://postgres@127.0.0.1:{url.port}/{url.database}"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without, connect_timeout=5).close()
    wrong = url.set(password="guess").render_as_string(hide_password=False)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5).close()
    with psycopg.connect(urls.database_url) as conn:
        method = conn.execute("show password_encryption").fetchone()
    assert method == ("scram-sha-256",)
    pg = services.postgres
    assert stat.S_IMODE(pg.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(pg.pgdata.stat().st_mode) == 0o700
    # the printed addresses never carry it
    password = str(url.password)
    assert all(password not in text for _, text in urls.describe())
    assert password not in repr(urls)


def test_postgres_password_is_reused_after_a_restart(started) -> None:
    services, urls = started
    services.stop()
    again = services.start()
    assert make_url(again.database_url).password == make_url(urls.database_url).password
    with psycopg.connect(again.database_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_redis_requires_its_password_and_refuses_admin_commands(started) -> None:
    services, urls = started
    url = make_url(urls.redis_url)
    assert url.password and url.host == "127.0.0.1"
    anonymous = redis.Redis(host="127.0.0.1", port=url.port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("engine:kill_switch", "off")
    anonymous.close()
    client = redis.Redis.from_url(urls.redis_url)
    try:
        assert client.ping()
        for command in (("CONFIG", "GET", "*"), ("DEBUG", "SLEEP", "0"), ("MODULE", "LIST")):
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command)
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.eval("return 1", 0)
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("SCRIPT", "FLUSH")
    finally:
        client.close()
    conf = services.redis.root / "server" / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert stat.S_IMODE(services.redis.password_file.stat().st_mode) == 0o600
    # the password is in the 0600 file, never on a command line other users can read
    pid = int((services.redis.root / "redis.addr").read_text().split()[0])
    assert str(url.password).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.skipif(not AS_ROOT, reason="the service account is used only when run as root")
def test_servers_do_not_run_as_root(started) -> None:
    services, _ = started
    redis_pid = int((services.redis.root / "redis.addr").read_text().split()[0])
    pg_pid = int((services.postgres.pgdata / "postmaster.pid").read_text().split()[0])
    for pid in (redis_pid, pg_pid):
        uid = process_uid(pid)
        assert uid is not None and uid != 0


def test_no_permission_changes_above_the_home(service_home: Path) -> None:
    parent = service_home / "users" / "alice"
    parent.mkdir(parents=True)
    parent.chmod(0o755)
    home = parent / "checkout" / ".marketflow"
    before = _modes(parent)
    services = Services(Settings(_env_file=None, MARKETFLOW_HOME=str(home)))
    urls = services.start()
    try:
        assert _modes(parent) == before
        with psycopg.connect(urls.database_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        services.stop()


@pytest.mark.skipif(not AS_ROOT, reason="a home closed to the service account needs root")
def test_a_private_home_works_as_root_without_opening_it(
    service_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout in a 0700 home directory (``/root`` in a container): the service account
    cannot reach it, and nothing above MARKETFLOW_HOME may be opened, so the server files
    move to a folder of their own (here a temporary stand-in for /var/lib/marketflow)."""
    private = service_home / "root"
    private.mkdir(mode=0o700)
    relocated = service_home / "var-lib-marketflow"
    monkeypatch.setattr(service_user, "RELOCATED_BASE", relocated)
    home = private / "marketflow" / ".marketflow"
    before = _modes(private)
    services = Services(Settings(_env_file=None, MARKETFLOW_HOME=str(home)))
    urls = services.start()
    try:
        assert _modes(private) == before
        assert (home / "postgres" / "server").resolve().parent == relocated
        with psycopg.connect(urls.database_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert redis.Redis.from_url(urls.redis_url).ping()
    finally:
        services.stop()
