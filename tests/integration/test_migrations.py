"""The SQL migrations runner against the real PostgreSQL of the stack."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

import catalogue
from pricestream.stack import Stack
from servicekit.db import applied_versions, migrate, pending_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection with empty scratch schemas `migtest` and `migfail`."""
    conn = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    scratch = "DROP SCHEMA IF EXISTS migtest CASCADE; DROP SCHEMA IF EXISTS migfail CASCADE"
    await conn.execute(scratch)
    await conn.execute("CREATE SCHEMA migtest; CREATE SCHEMA migfail")
    yield conn
    await conn.execute(scratch)
    await conn.close()


async def test_migrations_apply_once_are_recorded_and_edits_are_refused(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    (tmp_path / "0001_create_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_add_name.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    first = await migrate(conn, schema="migtest", directory=tmp_path)
    assert [m.version for m in first] == [1, 2]
    assert await migrate(conn, schema="migtest", directory=tmp_path) == [], "applied only once"
    assert set(await applied_versions(conn, schema="migtest")) == {1, 2}
    await conn.execute("INSERT INTO migtest.things (id, name) VALUES (1, 'milk')")

    (tmp_path / "0003_add_price.sql").write_text("ALTER TABLE things ADD COLUMN price_cents int;")
    pending = await pending_migrations(conn, schema="migtest", directory=tmp_path)
    assert [m.version for m in pending] == [3]
    assert [m.version for m in await migrate(conn, schema="migtest", directory=tmp_path)] == [3]

    (tmp_path / "0002_add_name.sql").write_text("ALTER TABLE things ADD COLUMN title text;")
    with pytest.raises(RuntimeError, match="0002_add_name was edited"):
        await migrate(conn, schema="migtest", directory=tmp_path)


async def test_a_failing_migration_applies_nothing(conn: asyncpg.Connection, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE broken (id nosuchtype);")
    with pytest.raises(asyncpg.UndefinedObjectError):
        await migrate(conn, schema="migfail", directory=tmp_path)
    assert await applied_versions(conn, schema="migfail") == {}
    assert await conn.fetchval("SELECT to_regclass('migfail.ok')") is None


async def test_the_catalogues_current_runs_move_from_history_to_its_prices(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Migration 4 keeps every run: the newest of each price becomes its current run, the rest stay."""
    migrations = sorted((Path(catalogue.__file__).parent / "migrations").glob("*.sql"))
    for path in migrations[:3]:
        (tmp_path / path.name).write_text(path.read_text())
    await migrate(conn, schema="migtest", directory=tmp_path)
    runs = [  # (store, sku, starts_at, ends_at, price): the newest run of each price ends at its sighting
        ("s1", "milk", 1, 3, 300),
        ("s1", "milk", 4, 9, 280),
        ("s1", "tea", 2, 8, 150),
        ("s2", "milk", 1, 1, 300),
        ("s2", "milk", 5, 5, 310),
        ("s2", "milk", 6, 7, 300),
    ]
    day = datetime(2026, 11, 1, tzinfo=UTC)
    await conn.executemany(
        """INSERT INTO migtest.history (chain, store_id, sku, starts_at, ends_at, price_cents)
           VALUES ('c', $1, $2, $3, $4, $5)""",
        [(store, sku, day + timedelta(days=a), day + timedelta(days=b), p) for store, sku, a, b, p in runs],
    )
    await conn.execute(
        """INSERT INTO migtest.prices (chain, store_id, sku, price_cents, available, sold_by, observed_at)
           SELECT DISTINCT ON (chain, store_id, sku) chain, store_id, sku, price_cents, true, 'each', ends_at
           FROM migtest.history ORDER BY chain, store_id, sku, starts_at DESC"""
    )
    (tmp_path / migrations[3].name).write_text(migrations[3].read_text())
    assert [m.version for m in await migrate(conn, schema="migtest", directory=tmp_path)] == [4]

    ended = await conn.fetch("SELECT store_id, sku, starts_at, ends_at, price_cents FROM migtest.history")
    current = await conn.fetch(
        "SELECT store_id, sku, run_starts_at, observed_at, price_cents FROM migtest.prices"
    )
    assert len(ended) == 3
    assert len(current) == 3
    assert sorted(tuple(r) for r in [*ended, *current]) == sorted(
        (store, sku, day + timedelta(days=a), day + timedelta(days=b), p) for store, sku, a, b, p in runs
    )
