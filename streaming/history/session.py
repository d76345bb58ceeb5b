"""A history backfill session: the connections, the REST client and the resolved symbols
behind one run of days, for the ``tick_history`` asset (and so ``marketflow backfill``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from types import TracebackType

import psycopg

from storage.db import connect
from streaming.history.backfill import DayBackfill, OnProgress
from streaming.history.report import DayReport
from streaming.history.symbols import Resolved, resolve_symbols
from streaming.venues.alpaca.rest import AlpacaRestClient

WRITER_CONNECTIONS = 2  # page COPYs at once: a second backend for the server's side


class HistorySession:
    """``with HistorySession(...) as session: session.day(d)`` for each day, in order."""

    def __init__(
        self,
        database_url: str,
        client: AlpacaRestClient,
        *,
        names: Sequence[str],
        feed: str,
        on_progress: OnProgress | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database_url = database_url
        self.client = client
        self.names = list(names)
        self.feed = feed
        self.on_progress = on_progress
        self.clock = clock
        self.stop = threading.Event()
        self._stack = contextlib.ExitStack()
        self.resolved = Resolved()
        self._loader: DayBackfill | None = None

    def __enter__(self) -> HistorySession:
        try:
            conn = self._connect()
            writers = [self._connect() for _ in range(WRITER_CONNECTIONS)]
            self.resolved = resolve_symbols(conn, self.names, self.feed)
            self._loader = DayBackfill(
                conn,
                writers,
                self.client,
                self.stop,
                feed=self.feed,
                created=self.resolved.created,
                on_progress=self.on_progress,
                clock=self.clock,
            )
        except BaseException:
            self._stack.close()
            raise
        return self

    def _connect(self) -> psycopg.Connection:
        conn = connect(self.database_url, autocommit=True, application_name="marketflow-history")
        return self._stack.enter_context(conn)

    def day(self, day: date) -> DayReport:
        """Fetch and store one day; the refused symbols are in its report."""
        assert self._loader is not None, "use the session in a with block"
        report = self._loader.run(day, self.resolved.symbols)
        report.symbols = [*report.symbols, *self.resolved.refused]
        report.refused = {**self.resolved.refused, **report.refused}
        return report

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()  # the fetch threads' waits end at once
        self._stack.close()
