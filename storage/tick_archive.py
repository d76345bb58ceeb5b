"""The tick archive on disk: one Parquet file and one manifest per UTC day (docs/retention.md).

Hive-style layout, so DuckDB and Polars read the whole archive with one glob::

    <root>/day=YYYY-MM-DD/ticks.parquet   every stored column of the day's ticks, zstd
    <root>/day=YYYY-MM-DD/manifest.json   rows, seq range, checksums (written last)

A day counts as archived once its manifest exists: the file is renamed into place first,
then the manifest, both from temporary names in the same folder, so a reader or a crash
never meets half a file under the final name. Files are never rewritten in place. Nothing
here talks to PostgreSQL: ``storage.tick_archiver`` moves days in, ``storage.tick_reads``
reads them back beside the days PostgreSQL still holds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ARCHIVE_FORMAT = "marketflow.tick_archive/1"
FILE_NAME = "ticks.parquet"
MANIFEST_NAME = "manifest.json"
DAY_PREFIX = "day="

# The stored columns of `ticks` (storage/migrations) plus the symbol's name, so the archive
# reads without the database that wrote it. Rows in (symbol_id, ts, seq) order: the order
# every tick reader uses, and row groups that a symbol or time filter can skip.
SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("symbol_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("trade_id", pa.string()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("exchange", pa.string()),
        ("conditions", pa.list_(pa.string())),
        ("side", pa.int16()),
        ("bid", pa.float64()),
        ("ask", pa.float64()),
        ("seq", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        # provenance (docs/history.md); files written before it have neither column
        ("source", pa.string()),
        ("feed", pa.string()),
    ]
)
SORT_KEYS = ("symbol_id", "ts", "seq")
# ~1 MB per column chunk: a one-symbol read of a busy day skips most of the file
ROW_GROUP_ROWS = 131_072


class ArchiveError(RuntimeError):
    """The archive cannot serve a day (missing or damaged file); the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    """What was archived for one day, checked before the day's partition was dropped."""

    day: str  # YYYY-MM-DD
    rows: int
    symbols: dict[str, int]  # symbol → rows
    min_seq: int | None
    max_seq: int | None
    seq_sum: int  # checked against the partition again right before it is dropped
    sha256: str  # of the Parquet file's bytes
    content_sha256: str  # of the key columns (symbol_id, ts, seq, trade_id) in file order
    file: str = FILE_NAME
    format: str = ARCHIVE_FORMAT
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != ARCHIVE_FORMAT:
            raise ArchiveError(f"not a marketflow tick archive manifest: {data.get('format')!r}")
        return cls(**data)


def content_digest(table: pa.Table) -> str:
    """sha256 over the key columns (symbol_id, ts, seq, trade_id) in row order: equal for two
    tables holding the same prints in the same order, whatever the file's encoding."""
    digest = hashlib.sha256()
    for name in ("symbol_id", "ts", "seq"):
        column = table.column(name).combine_chunks().cast(pa.int64()).fill_null(0)
        digest.update(np.asarray(column, dtype="<i8").tobytes())
    ids = table.column("trade_id").combine_chunks().cast(pa.large_string()).fill_null("")
    if len(ids):
        # the lengths, then the characters: two id lists differ in one or the other
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64)
        offsets = offsets[ids.offset : ids.offset + len(ids) + 1]
        digest.update(np.diff(offsets).astype("<i8").tobytes())
        data = ids.buffers()[2]
        if data is not None:
            digest.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def split_window(
    start: datetime, end: datetime, archived: Sequence[date]
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside the archived days (sorted), oldest first."""
    spans: list[tuple[datetime, datetime]] = []
    lo = start
    for day in archived:
        day_start, day_end = day_bounds(day)
        if lo < min(day_start, end):
            spans.append((lo, min(day_start, end)))
        lo = max(lo, day_end)
    if lo < end:
        spans.append((lo, end))
    return spans


@dataclass(frozen=True)
class TickArchive:
    """The archive under ``root`` (TICK_ARCHIVE_DIR, default $MARKETFLOW_HOME/archive/ticks)."""

    root: Path

    @classmethod
    def configured(cls) -> TickArchive:
        from core.settings import get_settings

        return cls(get_settings().archive_dir)

    def day_dir(self, day: date) -> Path:
        return self.root / f"{DAY_PREFIX}{day.isoformat()}"

    def file_path(self, day: date) -> Path:
        return self.day_dir(day) / FILE_NAME

    def manifest_path(self, day: date) -> Path:
        return self.day_dir(day) / MANIFEST_NAME

    def days(self) -> set[date]:
        """Every archived day (a day folder with its manifest)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return set()
        found = set()
        for name in names:
            if not name.startswith(DAY_PREFIX):
                continue
            try:
                day = date.fromisoformat(name[len(DAY_PREFIX) :])
            except ValueError:
                continue  # not ours: left alone
            if (self.root / name / MANIFEST_NAME).exists():
                found.add(day)
        return found

    def days_between(self, first: date, last: date) -> list[date]:
        """Archived days in [first, last], oldest first."""
        return sorted(d for d in self.days() if first <= d <= last)

    def archived_in(self, start: datetime, end: datetime) -> list[date]:
        """Archived days overlapping [start, end), oldest first."""
        if end <= start:
            return []
        return self.days_between(utc_day(start), utc_day(end - timedelta(microseconds=1)))

    def manifest(self, day: date) -> Manifest | None:
        try:
            return Manifest.from_json(self.manifest_path(day).read_text())
        except FileNotFoundError:
            return None

    def staging_path(self, day: date) -> Path:
        """Where an export is written before it is checked (not matched by ``*.parquet``)."""
        folder = self.day_dir(day)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{FILE_NAME}.{os.getpid()}.tmp"

    def write_staged(self, day: date, table: pa.Table) -> Path:
        """The day's table written to its staging name, flushed to disk."""
        path = self.staging_path(day)
        write_parquet(table.cast(SCHEMA), path, day)
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
        return path

    def publish(self, day: date, staged: Path, manifest: Manifest) -> None:
        """Rename a checked export into place, then its manifest: the day is archived."""
        folder = self.day_dir(day)
        os.replace(staged, folder / FILE_NAME)
        pending = folder / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
        with pending.open("w") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(pending, folder / MANIFEST_NAME)
        _fsync_dir(folder)
        _fsync_dir(self.root)

    def withdraw(self, day: date) -> None:
        """Remove a day from the archive (its rows are back in PostgreSQL): manifest first."""
        self.manifest_path(day).unlink(missing_ok=True)
        self.file_path(day).unlink(missing_ok=True)
        if self.day_dir(day).exists():
            _fsync_dir(self.day_dir(day))

    def read(
        self,
        day: date,
        columns: Sequence[str] | None = None,
        *,
        symbol_ids: Sequence[int] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pa.Table:
        """The day's rows (optionally some symbols, ``start <= ts < end``) in file order."""
        manifest = self.manifest(day)
        path = self.file_path(day)
        if manifest is None or not path.exists():
            raise ArchiveError(
                f"ticks of {day} are not in the archive at {self.root} "
                f"(expected {path} and its {MANIFEST_NAME})"
            )
        filters: list[tuple[str, str, object]] = []
        if symbol_ids is not None:
            filters.append(("symbol_id", "in", [int(s) for s in symbol_ids]))
        if start is not None:
            filters.append(("ts", ">=", pa.scalar(start, type=SCHEMA.field("ts").type)))
        if end is not None:
            filters.append(("ts", "<", pa.scalar(end, type=SCHEMA.field("ts").type)))
        try:
            # partitioning=None: the file alone (pyarrow would add `day` from the folder name)
            table = pq.read_table(
                path,
                columns=list(columns) if columns else None,
                filters=filters or None,
                partitioning=None,
            )
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveError(f"archived ticks of {day} cannot be read ({path}): {exc}") from exc
        if not filters and table.num_rows != manifest.rows:
            raise ArchiveError(
                f"archived ticks of {day} hold {table.num_rows} rows, the manifest says "
                f"{manifest.rows} ({path}): the file is damaged; restore it from a copy"
            )
        return table


def write_parquet(table: pa.Table, path: Path, day: date) -> None:
    """The archive's encoding: zstd, statistics and sort order recorded for readers."""
    meta = {
        b"marketflow.format": ARCHIVE_FORMAT.encode(),
        b"marketflow.day": day.isoformat().encode(),
    }
    table = table.replace_schema_metadata(meta)
    names = table.schema.names
    pq.write_table(
        table,
        path,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=["symbol", "exchange"],
        write_statistics=True,
        sorting_columns=[pq.SortingColumn(names.index(name)) for name in SORT_KEYS],
    )
