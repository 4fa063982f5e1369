"""Rows sent to COPY in PostgreSQL's binary format, encoded a column at a time.

asyncpg's `copy_records_to_table` encodes each field of each record in turn: 1.1-1.2 us of client
CPU a row of the catalogue's prices, and most of each service's Python while stores' first pages
are copied in (py-spy in `pricestream bench`: 44-72%). Here a block of rows is taken a column at a
time instead. A column with one value throughout the block (a page's chain, store, moment and
sweep, and most NULLs) is encoded once for all its rows; any other goes through a cache of each
distinct value's bytes, since a batch's products and prices repeat across its stores. PostgreSQL
reads the same binary rows either way (docs/benchmarks.md: 0.3 us a row).
"""

from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain, islice, repeat
from typing import Any, Literal

from servicekit.db import Connection

Kind = Literal["text", "int4", "int8", "bool", "timestamptz"]
"""A column's PostgreSQL type, as COPY's binary format writes it."""

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_BLOCK = 512
"""Rows whose columns are looked at together: about a page, so its constants show as such."""


def _text(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


def _int4(value: int) -> bytes:
    return b"\x00\x00\x00\x04" + value.to_bytes(4, "big", signed=True)


def _int8(value: int) -> bytes:
    return b"\x00\x00\x00\x08" + value.to_bytes(8, "big", signed=True)


def _bool(value: bool) -> bytes:
    return b"\x00\x00\x00\x01\x01" if value else b"\x00\x00\x00\x01\x00"


def _timestamptz(value: datetime) -> bytes:
    """Write microseconds since 2000-01-01 UTC; a naive moment has no instant to write."""
    if value.tzinfo is None:
        raise ValueError(f"a naive datetime cannot be sent as timestamptz: {value!r}")
    since = value - _PG_EPOCH
    micros = (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds
    return b"\x00\x00\x00\x08" + micros.to_bytes(8, "big", signed=True)


_WRITERS: dict[Kind, Callable[[Any], bytes]] = {
    "text": _text,
    "int4": _int4,
    "int8": _int8,
    "bool": _bool,
    "timestamptz": _timestamptz,
}


class _Written(dict[Hashable, bytes]):
    """Each distinct value of a column and its field's bytes (length and data), written once."""

    def __init__(self, kind: Kind) -> None:
        super().__init__()
        self.write = _WRITERS[kind]
        self[None] = _NULL

    def __missing__(self, value: Hashable) -> bytes:
        data = self[value] = self.write(value)
        return data


def binary_rows(records: Iterable[Sequence[object]], kinds: Sequence[Kind]) -> bytes:
    """Return `records` (their fields in the order of `kinds`) as a COPY ... (FORMAT binary) stream."""
    written = [_Written(kind) for kind in kinds]
    count = len(kinds).to_bytes(2, "big")
    out = [_SIGNATURE]
    rows = iter(records)
    while block := list(islice(rows, _BLOCK)):
        # Each row is its field count and fields; runs of columns constant in the block are one piece.
        pieces: list[Iterable[bytes]] = []
        constant = count
        for column, values in zip(written, zip(*block, strict=True), strict=True):
            first = values[0]
            if values.count(first) == len(values):
                constant += column[first]
                continue
            if constant:
                pieces.append(repeat(constant))
                constant = b""
            pieces.append(map(column.__getitem__, values))
        if constant:
            pieces.append(repeat(constant))
        out.append(
            b"".join(chain.from_iterable(zip(*pieces, strict=False)))
            if len(pieces) > 1
            else constant * len(block)
        )
    out.append(_TRAILER)
    return b"".join(out)


async def copy_rows(
    conn: Connection,
    table: str,
    *,
    columns: Sequence[str],
    kinds: Sequence[Kind],
    records: Iterable[Sequence[object]],
) -> None:
    """COPY records into a table's columns, each of the given kind (as `copy_records_to_table` would)."""
    if len(kinds) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(kinds)} kinds for {table}")
    await conn.copy_to_table(
        table, source=_once(binary_rows(records, kinds)), columns=list(columns), format="binary"
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    """Hand asyncpg the stream in one piece (bytes themselves it would take for a file's path)."""
    yield data
