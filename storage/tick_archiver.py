"""Moving a day of ticks from PostgreSQL to the Parquet archive, and only then dropping it.

``archive_day`` takes one UTC day through these steps (docs/retention.md):

1. rebuild the day's candles from its ticks (the one candles-from-ticks statement), so the
   candles kept in PostgreSQL agree with the prints that leave it;
2. export the partition in one snapshot to a staging file, read the file back and compare
   it with what was exported, and count rows and sum ``seq`` per symbol in SQL: a short,
   damaged or incomplete export stops here, the staging file is removed, nothing is dropped;
3. rename the file into place, then its manifest: from now on readers take the day from the
   archive (and still merge any row PostgreSQL holds for it);
4. in one transaction, with ``ticks`` locked (``lock_timeout``, retried with backoff):
   check the partition still holds exactly the exported rows, detach and drop it, record
   the day in ``tick_archive``. Rows that arrived after the export send the day back to 2.

A crash between any two steps leaves a state the next run completes. Late prints for an
archived day (a replay, a venue backfill) make ingest re-create the day's partition; the
next run copies the archived rows back into it, drops the duplicates (the archive's rows
win, as the first stored print wins in ``ticks``) and archives the merged day again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import errors, sql

from storage.candle_writes import rebuild_from_ticks
from storage.db import connect
from storage.tick_archive import (
    SCHEMA,
    ArchiveError,
    Manifest,
    TickArchive,
    content_digest,
    day_bounds,
    file_sha256,
)
from storage.tick_export import fetch_partition

log = logging.getLogger(__name__)

COLUMNS = tuple(name for name in SCHEMA.names if name != "symbol")
LOCK_TIMEOUT_MS = 2_000
DROP_ATTEMPTS = 5
EXPORT_ATTEMPTS = 3
_LOCK_SPACE = "marketflow.tick_archive"


@dataclass(frozen=True)
class DayOutcome:
    """What one day's run did: ``archived``, ``already_archived``, ``nothing_stored``,
    ``drop_deferred`` (exported, partition still there: ticks stayed locked by readers or
    kept changing; the next run drops it) or ``busy`` (another run holds the day)."""

    day: date
    action: str
    rows: int = 0
    merged: int = 0  # late rows merged into an archived day
    detail: str = ""


def retention_cutoff(today: date, retention_days: int) -> date:
    """The oldest day PostgreSQL keeps: days before it are archived. A day leaves once it
    ended ``retention_days`` full days ago (retention 1 keeps yesterday and today)."""
    if retention_days < 1:
        raise ValueError(f"retention must be at least one day, got {retention_days}")
    return today - timedelta(days=retention_days)


def partition_name(day: date) -> str:
    return f"ticks_{day:%Y%m%d}"


def stored_days(conn: psycopg.Connection) -> list[date]:
    """Days with a partition attached to ``ticks``, oldest first."""
    rows = conn.execute(
        "select c.relname from pg_inherits as i join pg_class as c on c.oid = i.inhrelid "
        "where i.inhparent = 'ticks'::regclass"
    ).fetchall()
    days = []
    for (name,) in rows:
        try:
            days.append(datetime.strptime(str(name), "ticks_%Y%m%d").date())
        except ValueError:
            continue  # a partition named by hand: not one of the daily ones
    return sorted(days)


def archive_day(url: str, archive: TickArchive, day: date) -> DayOutcome:
    """Archive one day (see the module docstring); safe to call again on any day."""
    with connect(url, autocommit=True, application_name="marketflow-archive") as conn:
        key = (day - date(2000, 1, 1)).days
        locked = conn.execute(
            "select pg_try_advisory_lock(hashtext(%s), %s)", (_LOCK_SPACE, key)
        ).fetchone()
        if not (locked and locked[0]):
            return DayOutcome(day, "busy", detail="another archive run holds this day")
        try:
            return _archive_locked(conn, archive, day)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s), %s)", (_LOCK_SPACE, key))


def _archive_locked(conn: psycopg.Connection, archive: TickArchive, day: date) -> DayOutcome:
    part = partition_name(day)
    attached = day in stored_days(conn)
    manifest = archive.manifest(day)
    merged = 0
    if manifest is not None and attached and _has_rows(conn, part):
        merged = _rehydrate(conn, archive, day, part)
        manifest = None
    if manifest is not None:
        # an empty partition ingest re-created for the day: dropped, the archive stands
        if attached and _drop(conn, part, (0, 0), manifest) != "dropped":
            return DayOutcome(day, "drop_deferred", manifest.rows, detail="empty partition kept")
        _record(conn, manifest)  # repairs a record a restored database lacks
        return DayOutcome(day, "already_archived", manifest.rows)
    if not attached:
        return DayOutcome(day, "nothing_stored")
    start, end = day_bounds(day)
    rebuild_from_ticks(conn, start, end, archive=archive)
    outcome, rows = "changed", 0
    for _ in range(EXPORT_ATTEMPTS):
        exported = _export(conn, archive, day, part)
        rows = exported.rows
        outcome = _drop(conn, part, (exported.rows, exported.seq_sum), exported)
        if outcome == "dropped":
            return DayOutcome(day, "archived", rows, merged)
        if outcome == "busy":
            break
    detail = "ticks stayed locked by other sessions" if outcome == "busy" else "rows kept arriving"
    return DayOutcome(day, "drop_deferred", rows, merged, detail)


def _has_rows(conn: psycopg.Connection, part: str) -> bool:
    query = sql.SQL("select exists (select 1 from {})").format(sql.Identifier(part))
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def _export(conn: psycopg.Connection, archive: TickArchive, day: date, part: str) -> Manifest:
    """Export, check and publish the partition; raises ArchiveError when the check fails."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read read only")
        table = fetch_partition(conn, part)
        counts = conn.execute(
            sql.SQL("select symbol_id, count(*), sum(seq)::numeric from {} group by 1").format(
                sql.Identifier(part)
            )
        ).fetchall()
    staged = archive.write_staged(day, table)
    try:
        manifest = check_export(
            staged, table, {int(r[0]): (int(r[1]), int(r[2])) for r in counts}, day
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    archive.publish(day, staged, manifest)
    return manifest


def check_export(
    staged: Path, table: pa.Table, counts: dict[int, tuple[int, int]], day: date
) -> Manifest:
    """The staged file read back equals the exported table, and per symbol its rows and
    ``sum(seq)`` equal what SQL counted in the same snapshot. Returns the day's manifest."""
    try:
        back = pq.read_table(staged, partitioning=None)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"export of {day} cannot be read back: {exc}; nothing dropped") from exc
    if not back.cast(SCHEMA).equals(table):
        raise ArchiveError(f"export of {day} does not read back as written; nothing dropped")
    found = _per_symbol(back)
    if found != counts:
        raise ArchiveError(
            f"export of {day} holds {sum(n for n, _ in found.values())} rows in "
            f"{len(found)} symbols, PostgreSQL counted {sum(n for n, _ in counts.values())} "
            f"in {len(counts)}; nothing dropped"
        )
    seq = back.column("seq")
    names = pc.unique(back.column("symbol")).to_pylist()
    per_name = {
        str(name): int(pc.sum(pc.equal(back.column("symbol"), name)).as_py() or 0) for name in names
    }
    return Manifest(
        day=day.isoformat(),
        rows=back.num_rows,
        symbols=per_name,
        min_seq=pc.min(seq).as_py(),
        max_seq=pc.max(seq).as_py(),
        seq_sum=sum(s for _, s in found.values()),
        sha256=file_sha256(staged),
        content_sha256=content_digest(back),
    )


def _per_symbol(table: pa.Table) -> dict[int, tuple[int, int]]:
    if table.num_rows == 0:
        return {}
    grouped = table.group_by("symbol_id").aggregate([("seq", "count"), ("seq", "sum")])
    return {
        int(sid): (int(n), int(total))
        for sid, n, total in zip(
            grouped.column("symbol_id").to_pylist(),
            grouped.column("seq_count").to_pylist(),
            grouped.column("seq_sum").to_pylist(),
            strict=True,
        )
    }


def _drop(
    conn: psycopg.Connection, part: str, expected: tuple[int, int], manifest: Manifest
) -> str:
    """Drop the partition if it holds ``expected`` (rows, sum of seq) and record the day:
    ``dropped``, ``changed`` (it holds other rows than exported) or ``busy``."""
    ident = sql.Identifier(part)
    for attempt in range(DROP_ATTEMPTS):
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = {LOCK_TIMEOUT_MS}")
                # the parent first, as every writer locks it: no deadlock with an insert
                conn.execute("lock table ticks in access exclusive mode")
                row = conn.execute(
                    sql.SQL("select count(*), coalesce(sum(seq), 0)::numeric from {}").format(ident)
                ).fetchone()
                if row is None or (int(row[0]), int(row[1])) != expected:
                    return "changed"
                conn.execute(sql.SQL("alter table ticks detach partition {}").format(ident))
                conn.execute(sql.SQL("drop table {}").format(ident))
                _record(conn, manifest)
            return "dropped"
        except errors.LockNotAvailable:
            log.info("ticks busy, drop of %s waits (attempt %d)", part, attempt + 1)
            time.sleep(min(2.0**attempt, 10.0))
    return "busy"


def _record(conn: psycopg.Connection, manifest: Manifest) -> None:
    conn.execute(
        "insert into tick_archive (day, file, rows, symbols, min_seq, max_seq, sha256, "
        "content_sha256) values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict (day) do update "
        "set file = excluded.file, rows = excluded.rows, symbols = excluded.symbols, "
        "min_seq = excluded.min_seq, max_seq = excluded.max_seq, sha256 = excluded.sha256, "
        "content_sha256 = excluded.content_sha256, archived_at = now()",
        (
            date.fromisoformat(manifest.day),
            f"day={manifest.day}/{manifest.file}",
            manifest.rows,
            len(manifest.symbols),
            manifest.min_seq,
            manifest.max_seq,
            manifest.sha256,
            manifest.content_sha256,
        ),
    )


def _rehydrate(conn: psycopg.Connection, archive: TickArchive, day: date, part: str) -> int:
    """Copy an archived day back into its re-created partition (the archive's rows win over
    late duplicates of the same key) and withdraw it from the archive. Returns the late rows
    kept."""
    archived = archive.read(day)
    # a file written before a column existed lacks it: the partition's default fills it
    # (provenance: source 'unknown', no feed)
    present = [c for c in COLUMNS if c in archived.column_names]
    ident = sql.Identifier(part)
    cols = sql.SQL(", ").join(map(sql.Identifier, present))
    with conn.transaction():
        # writers of this day wait; readers go on (they merge archive and partition anyway)
        conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(ident))
        conn.execute(
            sql.SQL(
                "create temp table ticks_rehydrate on commit drop as select {} from {} limit 0"
            ).format(cols, ident)
        )
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("copy ticks_rehydrate ({}) from stdin").format(cols)) as copy,
        ):
            for row in zip(*(archived.column(c).to_pylist() for c in present), strict=True):
                copy.write_row(row)
        conn.execute(
            sql.SQL(
                "delete from {} as t using ticks_rehydrate as a where t.symbol_id = a.symbol_id "
                "and t.ts = a.ts and t.trade_id = a.trade_id"
            ).format(ident)
        )
        late = conn.execute(sql.SQL("select count(*) from {}").format(ident)).fetchone()
        conn.execute(
            sql.SQL("insert into {} ({}) select {} from ticks_rehydrate").format(ident, cols, cols)
        )
        conn.execute("delete from tick_archive where day = %s", (day,))
    archive.withdraw(day)
    kept = int(late[0]) if late else 0
    log.info(
        "%s: %d archived rows back in PostgreSQL beside %d late rows", day, archived.num_rows, kept
    )
    return kept


def archive_days(url: str, archive: TickArchive, days: Sequence[date]) -> list[DayOutcome]:
    """Archive several days, oldest first; one day's failure is reported, not raised."""
    outcomes = []
    for day in sorted(days):
        try:
            outcomes.append(archive_day(url, archive, day))
        except (ArchiveError, psycopg.Error, OSError) as exc:  # a full disk, a lost mount
            outcomes.append(DayOutcome(day, "failed", detail=f"{type(exc).__name__}: {exc}"))
    return outcomes
