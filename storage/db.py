"""Connections to the market database (psycopg 3): URL normalisation and connect helpers.

Writers keep one long-lived connection each (``connect``) or borrow from a small
``ConnectionPool``; nothing in marketflow opens a connection per row or per tick.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import make_url

# seconds to wait for the server when opening a connection (fail fast, say what to do)
DEFAULT_CONNECT_TIMEOUT_S = 10


def sqlalchemy_url(url: str) -> str:
    """The URL with the SQLAlchemy driver spelled out: ``postgresql+psycopg://`` (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The URL libpq (psycopg.connect) understands: no ``+driver`` suffix."""
    parsed = make_url(url)
    if parsed.drivername.startswith(("postgresql", "postgres")):
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "marketflow"
) -> psycopg.Connection:
    """One connection, meant to live long (a writer's or a command's)."""
    return psycopg.connect(
        libpq_url(url),
        autocommit=autocommit,
        connect_timeout=DEFAULT_CONNECT_TIMEOUT_S,
        application_name=application_name,
    )


class ConnectionPool:
    """A tiny thread-safe pool: reuse idle connections, open at most ``size`` at a time.

    psycopg_pool is not a dependency; this covers what marketflow needs (a few readers in
    one process) and drops connections that come back broken.
    """

    def __init__(self, url: str, size: int = 4, *, autocommit: bool = True) -> None:
        self._url = url
        self._autocommit = autocommit
        self._idle: list[psycopg.Connection] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        self._slots.acquire()
        conn: psycopg.Connection | None = None
        try:
            with self._lock:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    if not candidate.closed:
                        conn = candidate
            if conn is None:
                conn = connect(self._url, autocommit=self._autocommit)
            yield conn
            if not self._autocommit and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.commit()
        except BaseException:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.rollback()
                if conn.broken:
                    conn.close()
            raise
        finally:
            if conn is not None and not conn.closed:
                with self._lock:
                    self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()
