"""PostgreSQL's binary COPY format for ``ticks`` rows, built a column at a time with numpy.

``copy.write_row`` turns each row into bytes in Python (a call per value through the
dumpers): for a 10 000-trade page of history that was most of the time spent on this side
of the connection. Here every column is encoded for all rows at once — fixed-width values
as big-endian arrays, text through Arrow's buffers, ``text[]`` once per distinct set — and
each column's segments (length prefix and value) are joined row by row by Arrow's
element-wise concatenation into one buffer that ``copy.write`` sends.

Layout (PostgreSQL "COPY ... (FORMAT binary)"): the 19-byte header, then per row an int16
field count and per field an int32 length (-1 for NULL) and the value; an int16 -1 ends
the stream. Values follow ``storage.tick_rows.COLUMNS``: timestamptz is int64 µs since
2000-01-01 UTC, float8 IEEE big-endian, int8/int2 big-endian, text UTF-8, text[] the
array format of ``storage.text_array_copy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from storage.text_array_copy import CachedTextArrayDumper
from storage.tick_rows import COLUMNS

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in µs since 1970


class TickColumns(Protocol):
    """The columns of a batch of ticks (``streaming.ingest.rows.TickRows`` has them)."""

    symbol_id: np.ndarray  # int64
    ts_ns: np.ndarray  # int64 ns since the epoch; stored truncated to µs
    trade_id: np.ndarray  # object str
    price: np.ndarray  # float64
    size: np.ndarray  # float64
    side: np.ndarray  # int8, 0 = NULL
    bid: np.ndarray  # float64, NaN = NULL
    ask: np.ndarray  # float64, NaN = NULL
    exchange: np.ndarray  # object str | None
    conditions: np.ndarray  # object tuple | list | None
    source: np.ndarray  # object str
    feed: np.ndarray  # object str | None


_NULL_SEGMENT = pa.scalar(b"\xff\xff\xff\xff", pa.binary())  # a NULL: length -1, no value


def _prefixed(lengths: np.ndarray) -> np.ndarray:
    """Big-endian int32 lengths as an (n, 4) byte matrix."""
    return lengths.astype(">i4").view(np.uint8).reshape(-1, 4)


def _fixed(values: np.ndarray, dtype: str, null: np.ndarray | None = None) -> pa.Array:
    """Segments (length prefix and value) of a fixed-width big-endian column (``dtype``
    like ``>i8``); NULL where ``null``."""
    n = values.shape[0]
    width = np.dtype(dtype).itemsize
    block = np.empty((n, 4 + width), np.uint8)
    block[:, :4] = _prefixed(np.full(1, width))[0]
    block[:, 4:] = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(n, width)
    segments = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4 + width), n, [None, pa.py_buffer(block)]
    ).cast(pa.binary())
    if null is not None and null.any():
        segments = pc.if_else(pa.array(null), _NULL_SEGMENT, segments)
    return segments


def _varlen(values: pa.Array) -> pa.Array:
    """Segments of a text/binary column from an Arrow array (nulls are NULL)."""
    values = values.cast(pa.binary())
    lengths = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    prefix = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4), len(values), [None, pa.py_buffer(_prefixed(lengths))]
    ).cast(pa.binary())
    joined = pc.binary_join_element_wise(prefix, values, pa.scalar(b"", pa.binary()))
    return pc.fill_null(joined, _NULL_SEGMENT) if values.null_count else joined


def _text(values: np.ndarray) -> pa.Array:
    return _varlen(pa.array(values.tolist(), type=pa.string()))


def _text_arrays(values: np.ndarray) -> pa.Array:
    """Segments of ``text[]``: each distinct set encoded once, then taken per row."""
    keys = [c if c is None or type(c) is tuple else tuple(c) for c in values.tolist()]
    column = np.empty(len(keys), dtype=object)
    column[:] = keys  # a column of tuples, not a matrix
    codes, distinct = pd.factorize(column)
    encode = CachedTextArrayDumper(tuple).dump
    encoded = pa.array([encode(c) for c in distinct], type=pa.binary())
    return _varlen(encoded.take(pa.array(codes, mask=codes < 0)))


@dataclass(frozen=True)
class EncodedRows:
    """One binary COPY stream: header, the rows' bytes (a view, not a copy), trailer."""

    rows: int
    parts: tuple[bytes | memoryview, ...]


def encode(rows: TickColumns) -> EncodedRows:
    """The rows as one binary COPY stream for ``COLUMNS`` (header and trailer included)."""
    us = rows.ts_ns // 1000 - PG_EPOCH_US  # floor: the µs the stream's timestamps truncate to
    segments = [
        _fixed(rows.symbol_id, ">i8"),
        _fixed(us, ">i8"),
        _text(rows.trade_id),
        _fixed(rows.price, ">f8"),
        _fixed(rows.size, ">f8"),
        _text(rows.exchange),
        _text_arrays(rows.conditions),
        _fixed(rows.side, ">i2", rows.side == 0),
        _fixed(rows.bid, ">f8", np.isnan(rows.bid)),
        _fixed(rows.ask, ">f8", np.isnan(rows.ask)),
        _text(rows.source),
        _text(rows.feed),
    ]
    assert len(segments) == len(COLUMNS)
    count = pa.scalar(np.array([len(segments)], ">i2").tobytes(), pa.binary())
    joined = pc.binary_join_element_wise(count, *segments, pa.scalar(b"", pa.binary()))
    offsets = np.frombuffer(joined.buffers()[1], np.int32, len(joined) + 1, joined.offset * 4)
    body = memoryview(joined.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    return EncodedRows(len(joined), (HEADER, body, TRAILER))
