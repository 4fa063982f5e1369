"""servicekit.copying: the binary COPY stream holds each record's fields, whichever columns are constant."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from servicekit.copying import Kind, binary_rows

KINDS: tuple[Kind, ...] = ("text", "int4", "int8", "bool", "timestamptz")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _read(stream: bytes) -> list[tuple[object, ...]]:
    """Parse a binary COPY stream of KINDS back into records."""
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
    assert stream.endswith(b"\xff\xff")
    at, rows = 19, []
    while stream[at : at + 2] != b"\xff\xff":
        assert int.from_bytes(stream[at : at + 2], "big") == len(KINDS)
        at += 2
        row: list[object] = []
        for kind in KINDS:
            size = int.from_bytes(stream[at : at + 4], "big", signed=True)
            at += 4
            if size < 0:
                row.append(None)
                continue
            data, at = stream[at : at + size], at + size
            if kind == "text":
                row.append(data.decode())
            elif kind == "bool":
                row.append(data == b"\x01")
            elif kind == "timestamptz":
                row.append(EPOCH + timedelta(microseconds=int.from_bytes(data, "big", signed=True)))
            else:
                row.append(int.from_bytes(data, "big", signed=True))
        rows.append(tuple(row))
    assert at == len(stream) - 2
    return rows


@pytest.mark.parametrize("varying", [0, 1, 3, 5])
def test_records_read_back_from_the_stream_with_any_columns_constant(varying: int) -> None:
    rng = random.Random(varying)
    at = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
    constant = ("store €", 199, -(2**40), True, at)
    records = []
    for n in range(1300):  # blocks of 512: the last one short
        values = [
            rng.choice(["", "p1", "p2", None, "é"]),
            rng.choice([0, -1, 2**31 - 1, None]),
            rng.choice([2**63 - 1, -(2**63), None]),
            rng.choice([True, False, None]),
            rng.choice([at, at + timedelta(microseconds=n), None]),
        ]
        records.append(tuple(v if i < varying else constant[i] for i, v in enumerate(values)))
    assert _read(binary_rows(records, KINDS)) == records
    assert _read(binary_rows([], KINDS)) == []


def test_a_record_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="zip"):
        binary_rows([("a", 1, 2, True, None), ("b", 1)], KINDS)
