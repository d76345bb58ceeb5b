"""Batched tick storage on binary COPY (psycopg 3), idempotent on (symbol_id, ts, trade_id).

One ``TickWriter`` per long-lived connection; each ``write(trades)`` is one transaction:

1. **streaming path** (the steady state of a live stream: every symbol cached, every day's
   partition known): prints are validated (``storage.tick_rows``; bad ones counted in
   ``rejects``) while a binary ``COPY ticks FROM STDIN`` streams them, so PostgreSQL ingests
   while Python converts. Fresh data lands at close to raw-COPY speed;
2. otherwise, or when that COPY hits a key already stored, the **exact path**: validate the
   whole batch, create missing symbols and the day partitions of unseen UTC days (plus a week
   ahead of live data), then binary COPY straight into ``ticks`` inside a savepoint;
3. **staged path**, only when a COPY hits a stored key (a reconnect or replay overlapping
   stored rows, or a duplicate inside the batch): binary COPY into a temporary staging table,
   then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, which keeps every new row and drops
   the duplicates. After a conflict the writer stays on the staged path for a few batches,
   since an overlap rarely ends in the middle of one batch.

``seq`` comes from the column default ``nextval('ticks_seq')``, so every stored row has a
unique, increasing-at-insert ingest sequence (gaps are normal: duplicates consume values too).
Use an autocommit connection (``storage.db.connect(url, autocommit=True)``): then each write
commits on its own; inside a caller's ``with conn.transaction():`` it becomes a savepoint and
commits with the caller. Deadlocks between writers of overlapping keys are retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

from core.events import Rejects, Trade
from storage.binary_copy import EncodedRows, TickColumns, encode
from storage.symbols import SymbolCache
from storage.text_array_copy import register_text_array_copy
from storage.tick_rows import (
    COLUMNS,
    COPY_TYPES,
    DEFAULT_MAX_FUTURE,
    TickRow,
    iter_rows,
    trades_to_rows,
)

log = logging.getLogger(__name__)

STAGE_TABLE = "ticks_stage"
_COLS = ", ".join(COLUMNS)
_COPY_DIRECT = f"copy ticks ({_COLS}) from stdin (format binary)"
_COPY_STAGE = f"copy {STAGE_TABLE} ({_COLS}) from stdin (format binary)"
_CREATE_STAGE = (
    f"create temp table if not exists {STAGE_TABLE} ("
    "symbol_id bigint, ts timestamptz, trade_id text, price double precision,"
    " size double precision, exchange text, conditions text[], side smallint,"
    " bid double precision, ask double precision, source text, feed text)"
    " on commit delete rows"
)
_MERGE_STAGE = (
    f"insert into ticks ({_COLS}) select {_COLS} from {STAGE_TABLE} "
    "on conflict (symbol_id, ts, trade_id) do nothing"
)
# batches to stay on the staged path after a conflict before trying direct COPY again
STAGED_AFTER_CONFLICT = 8
WRITE_ATTEMPTS = 5
# partitions created ahead of the newest live day a writer sees
PARTITIONS_AHEAD = timedelta(days=7)
# at most one warning about rejected prints per this many seconds (the counts go on)
REJECT_LOG_INTERVAL_S = 60.0


class _NeedsSetup(Exception):
    """A print needs a symbol or a partition created first: leave the streaming path."""


@dataclass(frozen=True)
class WriteResult:
    received: int  # prints handed to write()
    inserted: int  # new rows stored
    duplicates: int  # valid prints whose key was already stored (or repeated in the batch)
    rejected: int  # prints that failed validation (see ``TickWriter.rejects``)
    staged: bool  # True when the staged (ON CONFLICT) path ran


class TickWriter:
    """Writes batches of ``Trade`` to ``ticks``; see the module docstring for the scheme."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        source: str = "ingest",
        symbols: SymbolCache | None = None,
        max_future: timedelta = DEFAULT_MAX_FUTURE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conn = conn
        register_text_array_copy(conn)  # conditions: each distinct set encoded once
        self.symbols = symbols or SymbolCache(conn)
        self.max_future = max_future
        self.clock = clock
        self.rejects = Rejects(source)  # cumulative; ``take_rejects`` hands them over
        self._known_days: set[date] = set()
        self._staged_left = 0
        self._last_reject_log = -REJECT_LOG_INTERVAL_S

    def take_rejects(self) -> Rejects:
        """The rejects counted since the last call (for ``queries.record_rejects``)."""
        taken, self.rejects = self.rejects, Rejects(self.rejects.source)
        return taken

    def write(self, trades: Iterable[Trade]) -> WriteResult:
        """Store a batch; returns what happened to each print. Raises only on database errors."""
        batch = trades if isinstance(trades, list) else list(trades)
        result = self._write_streaming(batch) if self._staged_left == 0 else None
        if result is None:
            before = self.rejects.total
            rows, days = trades_to_rows(
                batch,
                self.symbols.get,
                self.rejects,
                now=self.clock(),
                max_future=self.max_future,
            )
            inserted, staged = self.write_rows(rows, days)
            rejected = self.rejects.total - before
            result = WriteResult(len(batch), inserted, len(rows) - inserted, rejected, staged)
        if result.rejected:
            self._log_rejects(result.rejected)
        return result

    def _write_streaming(self, batch: list[Trade]) -> WriteResult | None:
        """The fast path: rows are validated while COPY streams them, so the server works
        while Python converts. Only for the plain case (every symbol cached, every day's
        partition known, no stored key hit); anything else returns None and the batch goes
        the exact way (``write_rows``) from the start."""
        if not self._known_days or not batch:
            return None
        cached, known = self.symbols.cached, self._known_days

        def symbol_id(symbol: str) -> int:
            sid = cached.get(symbol)
            if sid is None:
                raise _NeedsSetup  # creating a symbol cannot happen in the middle of a COPY
            return sid

        def on_day(day: date) -> None:
            if day not in known:
                raise _NeedsSetup

        rejects = Rejects(self.rejects.source)  # merged only if this attempt stands
        rows = iter_rows(
            batch, symbol_id, rejects, on_day, now=self.clock(), max_future=self.max_future
        )
        valid = 0
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                with cur.copy(_COPY_DIRECT) as copy:
                    copy.set_types(COPY_TYPES)
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)
                        valid += 1
                inserted = cur.rowcount
        except _NeedsSetup:
            return None
        except errors.UniqueViolation:
            self._staged_left = STAGED_AFTER_CONFLICT  # the exact path goes staged directly
            return None
        except (errors.DeadlockDetected, errors.SerializationFailure):
            return None  # the exact path retries these
        except errors.CheckViolation:
            self._known_days.clear()  # a known partition is gone: the exact path re-creates
            return None
        except psycopg.Error:
            self._forget()
            raise
        for reason, count in rejects.counts.items():
            self.rejects.counts[reason] = self.rejects.counts.get(reason, 0) + count
            self.rejects.samples.setdefault(reason, rejects.samples[reason])
        return WriteResult(len(batch), inserted, valid - inserted, rejects.total, False)

    def _log_rejects(self, rejected: int) -> None:
        if time.monotonic() - self._last_reject_log < REJECT_LOG_INTERVAL_S:
            return
        self._last_reject_log = time.monotonic()
        log.warning(
            "tick writer (%s): %d bad prints skipped in this batch; totals %s; samples %s",
            self.rejects.source,
            rejected,
            self.rejects.counts,
            self.rejects.samples,
        )

    def write_columns(self, rows: TickColumns, days: set[date]) -> tuple[int, bool]:
        """Store validated columns falling on ``days``, encoded for COPY a column at a time
        (``storage.binary_copy``: no Python work per row); see ``write_rows``."""
        if rows.ts_ns.shape[0] == 0:
            return 0, False
        return self.write_rows(encode(rows), days)

    def write_rows(
        self, rows: Sequence[TickRow] | EncodedRows, days: set[date]
    ) -> tuple[int, bool]:
        """Store already validated rows (``tick_rows.COLUMNS`` order, or one binary COPY
        stream of them, ``storage.binary_copy.encode``) falling on ``days``.

        Returns (rows inserted, whether the staged path ran). A deadlock with another writer
        storing the same keys, or a remembered day partition that is gone (dropped by
        retention), is retried; any other database error is raised.
        """
        if (rows.rows if isinstance(rows, EncodedRows) else len(rows)) == 0:
            return 0, False
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            self.ensure_days(days)
            try:
                return self._write_once(rows)
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                if attempt == WRITE_ATTEMPTS:
                    self._forget()
                    raise
                log.warning("tick write: %s, retrying", exc.__class__.__name__)
                time.sleep(random.uniform(0.0, 0.05 * attempt))  # let the other writer finish
            except errors.CheckViolation:
                if attempt == WRITE_ATTEMPTS or not self._known_days:
                    self._forget()
                    raise
                self._known_days.clear()  # "no partition of relation ticks found"
            except psycopg.Error:
                self._forget()
                raise
        raise AssertionError("unreachable")

    def _write_once(self, rows: Sequence[TickRow] | EncodedRows) -> tuple[int, bool]:
        # a transaction of its own on an autocommit connection, a savepoint inside a caller's
        with self.conn.transaction():
            if self._staged_left > 0:
                self._staged_left -= 1
                return self._staged(rows), True
            try:
                return self._direct(rows), False
            except errors.UniqueViolation:
                self._staged_left = STAGED_AFTER_CONFLICT
                return self._staged(rows), True

    def _forget(self) -> None:
        # a rollback may have undone partitions or symbols created in this transaction:
        # look them up again next time
        self._known_days.clear()
        self.symbols.forget()

    def ensure_days(self, days: Iterable[date]) -> None:
        """Create the daily partitions for days this writer has not seen (cached).

        A live day (yesterday or later by the writer's clock) also creates the next
        ``PARTITIONS_AHEAD`` days, so the midnight switch finds its partition waiting.
        """
        new = sorted(set(days) - self._known_days)
        if not new:
            return
        ranges = [(day, day) for day in new]
        if new[-1] >= self.clock().date() - timedelta(days=1):
            ranges.append((new[-1] + timedelta(days=1), new[-1] + PARTITIONS_AHEAD))
        # inside a caller's transaction a creation may still be rolled back: remember the
        # days only once they are committed (autocommit connection, no open transaction)
        committed = self.conn.info.transaction_status == TransactionStatus.IDLE
        with self.conn.transaction(), self.conn.cursor() as cur:
            for lo, hi in ranges:
                cur.execute("select ensure_tick_partitions(%s, %s)", (lo, hi))
        if committed and self.conn.autocommit:
            for lo, hi in ranges:
                self._known_days.update(lo + timedelta(days=i) for i in range((hi - lo).days + 1))

    def _copy(self, statement: str, rows: Sequence[TickRow] | EncodedRows) -> int:
        with self.conn.cursor() as cur:
            with cur.copy(statement) as copy:
                if isinstance(rows, EncodedRows):  # a whole binary stream (binary_copy)
                    for part in rows.parts:
                        copy.write(part)
                else:
                    copy.set_types(COPY_TYPES)
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)
            return cur.rowcount

    def _direct(self, rows: Sequence[TickRow] | EncodedRows) -> int:
        with self.conn.transaction():  # savepoint: a conflict undoes only this COPY
            return self._copy(_COPY_DIRECT, rows)

    def _staged(self, rows: Sequence[TickRow] | EncodedRows) -> int:
        with self.conn.cursor() as cur:
            cur.execute(_CREATE_STAGE)
            # inside a caller's transaction rows of an earlier batch may still be there
            cur.execute(f"truncate {STAGE_TABLE}")
        self._copy(_COPY_STAGE, rows)
        with self.conn.cursor() as cur:
            cur.execute(_MERGE_STAGE)
            inserted = cur.rowcount
        log.debug("staged tick write: %d rows new", inserted)
        return inserted
