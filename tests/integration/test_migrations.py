"""The SQL migrations runner against the real PostgreSQL of the stack."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

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
