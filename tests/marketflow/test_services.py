"""Embedded services: start, stop, restart keeping data; beside servers on 5432/6379."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import psycopg
import pytest
import redis

from core.service_urls import ServiceError, redact_url, resolve_urls
from core.settings import Settings
from marketflow.services import Services


def _settings(home: Path, **env: str) -> Settings:
    return Settings(_env_file=None, MARKETFLOW_HOME=str(home), **env)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_services_restart_keeps_data(service_home: Path) -> None:
    tmp_path = service_home
    services = Services(_settings(tmp_path))
    urls = services.start()
    try:
        assert urls.embedded_postgres and urls.embedded_redis
        # never the well-known ports, which a machine may already be serving
        assert ":5432/" not in urls.database_url and ":6379/" not in urls.redis_url
        with psycopg.connect(urls.database_url, autocommit=True) as conn:
            conn.execute("create table keep (v int)")
            conn.execute("insert into keep values (42)")
        with psycopg.connect(urls.dagster_database_url) as conn:
            assert conn.execute("select current_database()").fetchone() == ("dagster",)
        client = redis.Redis.from_url(urls.redis_url)
        client.set("kept", "yes")
        client.close()
        state = json.loads((tmp_path / "services.json").read_text())
        assert state["database_url"] == urls.database_url
        assert resolve_urls(_settings(tmp_path)).redis_url == urls.redis_url
    finally:
        services.stop()
    assert not (tmp_path / "services.json").exists()

    again = Services(_settings(tmp_path))
    urls2 = again.start()
    try:
        with psycopg.connect(urls2.database_url) as conn:
            assert conn.execute("select v from keep").fetchone() == (42,)
        assert redis.Redis.from_url(urls2.redis_url).get("kept") == b"yes"
    finally:
        again.stop()
    port = int(urls2.database_url.rsplit(":", 1)[1].split("/")[0])
    assert not _port_open(port)


def test_external_servers_are_used_when_configured(
    tmp_path: Path, pg_admin_url: str, redis_server_url: str
) -> None:
    settings = _settings(tmp_path, DATABASE_URL=pg_admin_url, REDIS_URL=redis_server_url)
    services = Services(settings)
    urls = services.start()
    try:
        assert not urls.embedded_postgres and not urls.embedded_redis
        assert urls.database_url == pg_admin_url
        assert urls.dagster_database_url.endswith("/dagster")
        assert not (tmp_path / "postgres").exists()
    finally:
        services.stop()


def test_missing_services_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="DATABASE_URL"):
        resolve_urls(_settings(tmp_path))


def test_unreachable_database_error_hides_password(tmp_path: Path) -> None:
    port = 1  # nothing listens there
    url = f"postgresql://trader:hunter2@127.0.0.1:{port}/market"
    with pytest.raises(ServiceError) as info:
        Services(_settings(tmp_path, DATABASE_URL=url)).start()
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in redact_url(url)


def test_service_urls_repr_and_redaction_hide_every_password() -> None:
    from core.service_urls import ServiceUrls

    urls = ServiceUrls(
        "postgresql://trader:hunter2@db.example:5432/market",
        "postgresql://trader:hunter2@db.example:5432/dagster",
        "redis://:swordfish@cache.example:6379/0",
    )
    # a ServiceUrls ends up in log lines and tracebacks: its repr must not carry secrets
    for text in (repr(urls), str(urls), *(addr for _, addr in urls.describe())):
        assert "hunter2" not in text and "swordfish" not in text
    # a password given as a query parameter, or a URL SQLAlchemy cannot parse (a libpq
    # key=value DSN), is masked too instead of being printed or raised in an error
    assert "hunter2" not in redact_url("postgresql://db.example/market?password=hunter2")
    assert "hunter2" not in redact_url("host=db.example user=trader password=hunter2")


def test_state_file_is_private_from_its_creation(tmp_path: Path, monkeypatch) -> None:
    import os
    import stat

    from core import service_urls

    modes: list[int] = []
    real_chmod = Path.chmod

    def spy_chmod(self: Path, mode: int, **kw: object) -> None:
        modes.append(stat.S_IMODE(os.stat(self).st_mode))  # the mode before any chmod
        real_chmod(self, mode, **kw)

    monkeypatch.setattr(Path, "chmod", spy_chmod)
    svc = Services(_settings(tmp_path))
    svc.urls = service_urls.ServiceUrls(
        "postgresql://trader:hunter2@h/market", "postgresql://trader:hunter2@h/dag", "redis://h/0"
    )
    svc._write_state()
    path = tmp_path / service_urls.STATE_FILE
    # never world- or group-readable, not even between the write and a later chmod
    assert all(mode & 0o077 == 0 for mode in modes)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["redis_url"] == "redis://h/0"


def test_embedded_servers_stay_on_loopback_whatever_the_dashboard_binds(tmp_path: Path) -> None:
    """Found in review: the embedded servers listened on MARKETFLOW_BIND_HOST, the dashboard's
    address. Exposing the dashboard (0.0.0.0 + token) then exposed a trust-auth PostgreSQL
    (superuser without a password) and a password-less Redis to the network."""
    services = Services(
        _settings(tmp_path, MARKETFLOW_BIND_HOST="0.0.0.0", MARKETFLOW_API_TOKEN="t")
    )
    assert services.postgres.host == "127.0.0.1"
    assert services.redis.host == "127.0.0.1"


def test_stale_redis_address_file_never_targets_another_process(service_home: Path) -> None:
    """Found in review: ``redis.addr`` is trusted by pid alone. After a reboot (or a crash)
    its pid may belong to an unrelated process: ``start`` then "adopted" a port nothing
    listens on, and ``stop`` sent that process SIGTERM."""
    tmp_path = service_home  # reachable by the service account: nothing is relocated
    import subprocess
    import sys

    from marketflow.embedded.postgres import EmbeddedPostgres
    from marketflow.embedded.process import free_port
    from marketflow.embedded.redis import EmbeddedRedis

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        root = tmp_path / "redis"
        root.mkdir()
        (root / "redis.addr").write_text(f"{bystander.pid} {free_port()}")
        redis_server = EmbeddedRedis(root)
        assert redis_server._running() is None  # not a redis-server: not adopted
        redis_server.stop()
        assert bystander.poll() is None  # and never signalled
        # the same for a stale postmaster.pid: not adopted as a running PostgreSQL
        postgres = EmbeddedPostgres(tmp_path / "postgres")
        postgres.pgdata.mkdir(parents=True)
        pidfile = postgres.pgdata / "postmaster.pid"
        pidfile.write_text(f"{bystander.pid}\n{postgres.pgdata}\n0\n{free_port()}\n")
        assert postgres._running_port() is None
    finally:
        bystander.kill()
        bystander.wait()
