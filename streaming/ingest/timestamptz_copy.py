"""Binary COPY of timestamptz from int µs since the Unix epoch, row by row.

A COPY with explicit column types picks the timestamptz dumper by type oid. Registering
this one on a connection lets rows carry plain ints (``rows.to_writer_rows``, straight
from the int64 ns columns) instead of an aware ``datetime`` per row. The writers now encode
whole columns (``storage.binary_copy``); this serves the benchmarks' reference, which COPYs
the same rows row by row. Datetimes still work (converted).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in µs since 1970
_PACK = struct.Struct(">q").pack
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _EpochMicros(int):
    """Marker type the dumper is registered for (psycopg registers dumpers by type and
    oid; COPY with ``set_types`` looks them up by oid). Never instantiated."""


class EpochMicrosTimestamptzDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: object) -> bytes:
        if isinstance(obj, int):
            return _PACK(obj - PG_EPOCH_US)
        if isinstance(obj, datetime) and obj.tzinfo is not None:
            delta = obj - _UNIX_EPOCH
            us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            return _PACK(us - PG_EPOCH_US)
        raise psycopg.DataError(f"cannot dump {type(obj).__name__} as timestamptz")


def register_timestamptz_copy(conn: psycopg.Connection) -> None:
    oid = conn.adapters.types["timestamptz"].oid
    dumper = type("EpochMicrosDumper", (EpochMicrosTimestamptzDumper,), {"oid": oid})
    conn.adapters.register_dumper(_EpochMicros, dumper)
