"""servicekit.copying on the stack's real PostgreSQL: rows copied in binary read back as asyncpg's COPY."""

import random
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from pricestream.stack import Stack
from servicekit.copying import Kind, copy_rows

pytestmark = pytest.mark.integration

COLUMNS = ("chain", "store_id", "sku", "price_cents", "was_price_cents", "available", "observed_at", "sweep")
KINDS: tuple[Kind, ...] = ("text", "text", "text", "int4", "int4", "bool", "timestamptz", "int8")
TABLE = """(chain text, store_id text, sku text, price_cents integer, was_price_cents integer,
            available boolean, observed_at timestamptz, sweep bigint)"""


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the stack's database, with two scratch tables of one shape."""
    connection = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    await connection.execute(f"CREATE TEMP TABLE ours {TABLE}; CREATE TEMP TABLE theirs {TABLE}")
    yield connection
    await connection.close()


def _rows(rng: random.Random, stores: int, skus: int) -> list[tuple[object, ...]]:
    """Return pages of rows as a service copies them: constant per store, odd values sprinkled in."""
    zones = [UTC, timezone(timedelta(hours=10)), timezone(timedelta(hours=-3, minutes=-30))]
    alphabet = string.ascii_letters + string.digits + " ,{}\"\\'\t\n-é€😀"
    rows: list[tuple[object, ...]] = []
    for s in range(stores):
        at = (
            datetime(2026, 12, 1, tzinfo=UTC) - timedelta(microseconds=rng.randint(-(10**15), 10**15))
        ).astimezone(rng.choice(zones))
        odd = s % 3 == 0  # a page whose every column varies
        for k in range(skus):
            rows.append(
                (
                    "chain" if not odd or k % 2 else "",
                    f"store-{s}",
                    "".join(rng.choices(alphabet, k=rng.randint(0, 9))) if odd else f"p{k:05d}",
                    rng.choice([0, 1, -1, 2**31 - 1, -(2**31), 199]) if odd else 100 + k,
                    None if not odd or rng.random() < 0.5 else rng.randint(-(2**31), 2**31 - 1),
                    rng.random() < 0.5 if odd else True,
                    at + timedelta(microseconds=k) if odd else at,
                    rng.choice([None, 0, 2**63 - 1, -(2**63), rng.randint(-(2**63), 2**63 - 1)])
                    if odd
                    else s,
                )
            )
    return rows


async def test_rows_copied_in_binary_read_back_as_asyncpgs_copy(conn: asyncpg.Connection) -> None:
    rows = _rows(random.Random(5), stores=9, skus=700)  # blocks straddle pages, some pages constant
    await copy_rows(conn, "ours", columns=COLUMNS, kinds=KINDS, records=rows)
    await conn.copy_records_to_table("theirs", records=rows, columns=COLUMNS)
    # The session's time zone must not matter: each moment goes as an instant.
    await conn.execute("SET TIME ZONE 'America/Los_Angeles'")
    ours = [tuple(r) for r in await conn.fetch("SELECT * FROM ours")]
    assert ours == [tuple(r) for r in await conn.fetch("SELECT * FROM theirs")]
    assert ours == rows


async def test_an_empty_batch_and_a_single_row_copy(conn: asyncpg.Connection) -> None:
    await copy_rows(conn, "ours", columns=COLUMNS, kinds=KINDS, records=[])
    assert await conn.fetchval("SELECT count(*) FROM ours") == 0
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    await copy_rows(
        conn, "ours", columns=COLUMNS, kinds=KINDS, records=iter([("c", "s", "p", 5, None, False, at, None)])
    )
    assert [tuple(r) for r in await conn.fetch("SELECT * FROM ours")] == [
        ("c", "s", "p", 5, None, False, at, None)
    ]


async def test_a_naive_moment_or_a_value_out_of_range_copies_nothing(conn: asyncpg.Connection) -> None:
    naive = [("c", "s", "p", 5, None, True, datetime(2026, 12, 1), 1)]
    with pytest.raises(ValueError, match="naive"):
        await copy_rows(conn, "ours", columns=COLUMNS, kinds=KINDS, records=naive)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(OverflowError):
        await copy_rows(
            conn, "ours", columns=COLUMNS, kinds=KINDS, records=[("c", "s", "p", 2**31, None, True, at, 1)]
        )
    with pytest.raises(ValueError, match="kinds"):
        await copy_rows(conn, "ours", columns=COLUMNS, kinds=KINDS[:-1], records=[])
    assert await conn.fetchval("SELECT count(*) FROM ours") == 0
