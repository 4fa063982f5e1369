"""servicekit.columns against the stack's real PostgreSQL: what goes in as a literal comes back as sent."""

import random
import string
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest

from pricestream.stack import Stack
from servicekit import columns

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the stack's database."""
    connection = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    yield connection
    await connection.close()


def _awkward_texts(rng: random.Random, n: int) -> list[str | None]:
    """Return strings full of what an array literal treats as syntax, with NULLs and look-alikes."""
    alphabet = string.ascii_letters + string.digits + " ,{}\"\\'\t\n-._:;NULLé€"
    fixed: list[str | None] = ["", "NULL", "null", " ", "{}", '"', "\\", None]
    return fixed + [
        None if rng.random() < 0.05 else "".join(rng.choices(alphabet, k=rng.randint(0, 12)))
        for _ in range(n)
    ]


async def test_texts_come_back_as_sent(conn: asyncpg.Connection) -> None:
    rng = random.Random(7)
    for _ in range(20):
        values = _awkward_texts(rng, 200)
        assert await conn.fetchval("SELECT $1::text::text[]", columns.texts(values)) == values
    safe = [f"s{i:05d}" for i in range(1000)]
    assert await conn.fetchval("SELECT $1::text::text[]", columns.texts(safe)) == safe


async def test_ints_instants_and_days_come_back_as_sent(conn: asyncpg.Connection) -> None:
    rng = random.Random(11)
    ints = [None if rng.random() < 0.1 else rng.randint(-(2**62), 2**62) for _ in range(500)]
    assert await conn.fetchval("SELECT $1::text::bigint[]", columns.ints(ints)) == ints
    start = datetime(2026, 11, 29, tzinfo=UTC)
    zones = [UTC, timezone(timedelta(hours=10)), timezone(timedelta(hours=-3, minutes=-30))]
    instants = [
        None
        if rng.random() < 0.1
        else (start - timedelta(microseconds=rng.randint(0, 10**13))).astimezone(rng.choice(zones))
        for _ in range(500)
    ]
    # The server's session time zone must not matter: the literal carries each offset.
    await conn.execute("SET TIME ZONE 'America/Los_Angeles'")
    back = await conn.fetchval("SELECT $1::text::timestamptz[]", columns.instants(instants))
    assert back == instants
    days = [
        None if rng.random() < 0.1 else date(2026, 1, 1) + timedelta(days=rng.randint(0, 900))
        for _ in range(200)
    ]
    assert await conn.fetchval("SELECT $1::text::date[]", columns.days(days)) == days


async def test_columns_unnest_as_lists_did(conn: asyncpg.Connection) -> None:
    at = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    stores, skus, prices, times = ["s1", "s2", "s3"], ["p1", None, 'p"3'], [100, None, 300], [at, at, None]
    as_lists = await conn.fetch(
        "SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[])",
        stores,
        skus,
        prices,
        times,
    )
    as_literals = await conn.fetch(
        "SELECT * FROM unnest($1::text::text[], $2::text::text[], $3::text::int[], $4::text::timestamptz[])",
        columns.texts(stores),
        columns.texts(skus),
        columns.ints(prices),
        columns.instants(times),
    )
    assert [tuple(r) for r in as_literals] == [tuple(r) for r in as_lists]
