"""Binary COPY of ``text[]`` (``ticks.conditions``) from a cache of encoded arrays.

psycopg's list dumper is pure Python and walks every element of every row: in a COPY of
prints with trade conditions it was the largest single cost per row. A tape carries a few
dozen distinct condition sets (``("@", "I")``, ``("@", "T", "I")``, ...), so each is
encoded once and reused. ``TickWriter`` registers this on its connection; COPY with
``set_types`` picks the dumper by the column's oid, so lists and tuples both go through it
(the same trick as ``streaming/ingest/timestamptz_copy.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

MAX_CACHED = 4096  # distinct condition sets remembered (a tape has a few dozen)
_HEAD = struct.Struct(">iiIii")  # ndim, has-null flag, element oid, length, lower bound
_LEN = struct.Struct(">i").pack


class _TextArray(tuple):  # type: ignore[type-arg,unused-ignore]
    """Marker type the dumper is registered for (see timestamptz_copy). Never built."""


# encoded arrays by content, shared by every COPY (a dict is safe to share between threads)
_CACHE: dict[tuple[str, ...], bytes] = {}


class CachedTextArrayDumper(Dumper):
    format = Format.BINARY
    element_oid = 25  # text

    def dump(self, obj: Sequence[str]) -> bytes:
        key = obj if type(obj) is tuple else tuple(obj)
        encoded = _CACHE.get(key)
        if encoded is None:
            encoded = self._encode(key)
            if len(_CACHE) < MAX_CACHED:
                _CACHE[key] = encoded
        return encoded

    def _encode(self, items: tuple[str, ...]) -> bytes:
        if not items:
            return struct.pack(">iiI", 0, 0, self.element_oid)
        parts = [_HEAD.pack(1, 0, self.element_oid, len(items), 1)]
        for item in items:
            if not isinstance(item, str):
                raise psycopg.DataError(f"condition {item!r} is not text")
            data = item.encode()
            parts.append(_LEN(len(data)))
            parts.append(data)
        return b"".join(parts)


def register_text_array_copy(conn: psycopg.Connection) -> None:
    oid = conn.adapters.types["text"].array_oid
    dumper = type("CachedTextArrayDumper", (CachedTextArrayDumper,), {"oid": oid})
    conn.adapters.register_dumper(_TextArray, dumper)
