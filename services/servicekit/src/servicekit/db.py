"""asyncpg pool bound to the service's schema, and the SQL migrations runner."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from servicekit.settings import ServiceSettings

MIGRATIONS_TABLE = "schema_migrations"

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, on its own or borrowed from a pool."""


class Database:
    """The service's connection pool, opened at start-up and handed to repositories."""

    def __init__(self, settings: ServiceSettings, migrations: Path) -> None:
        self.settings = settings
        self.schema = settings.schema_name
        self.migrations = migrations
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """Return the open pool; handlers only run after `connect`."""
        if self._pool is None:
            raise RuntimeError("database is not connected yet")
        return self._pool

    async def connect(self) -> None:
        """Open a pool whose connections search the service's schema."""
        self._pool = await asyncpg.create_pool(
            self.settings.database_url.get_secret_value(),
            min_size=self.settings.db_pool_min_size,
            max_size=self.settings.db_pool_max_size,
            server_settings={"search_path": self.schema, "application_name": self.settings.service_name},
        )

    async def migrate(self) -> list["Migration"]:
        """Apply the service's pending migrations."""
        async with self.pool.acquire() as conn:
            return await migrate(conn, schema=self.schema, directory=self.migrations)

    async def check(self, timeout: float) -> dict[str, bool]:
        """Tell whether the database answers and every migration is applied."""
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                await conn.fetchval("SELECT 1", timeout=timeout)
                pending = await pending_migrations(conn, schema=self.schema, directory=self.migrations)
        except Exception:
            return {"database": False, "migrations": False}
        return {"database": True, "migrations": not pending}

    async def close(self) -> None:
        """Close the pool, waiting for connections in use."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL file: `0001_create_outbox.sql` is version 1."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Return the SQL's SHA-256, to notice an applied migration that was edited."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    """Read `NNNN_name.sql` files in version order; refuse gaps and duplicates."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        if not number.isdigit() or not name:
            raise ValueError(f"migration file {path.name} must be named NNNN_description.sql")
        migrations.append(Migration(int(number), name, path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations in {directory} must be numbered 1..n without gaps, got {versions}")
    return migrations


async def applied_versions(conn: Connection, *, schema: str) -> dict[int, str]:
    """Return applied versions and their checksums (empty when none ever ran)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.{MIGRATIONS_TABLE}")
    if not exists:
        return {}
    rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.{MIGRATIONS_TABLE}")
    return {row["version"]: row["checksum"] for row in rows}


async def pending_migrations(conn: Connection, *, schema: str, directory: Path) -> list[Migration]:
    """Return the migrations not yet applied; raise if an applied one was edited since."""
    applied = await applied_versions(conn, schema=schema)
    pending = []
    for migration in load_migrations(directory):
        checksum = applied.get(migration.version)
        if checksum is None:
            pending.append(migration)
        elif checksum != migration.checksum:
            raise RuntimeError(f"applied migration {migration.version:04d}_{migration.name} was edited since")
    return pending


async def migrate(conn: Connection, *, schema: str, directory: Path) -> list[Migration]:
    """Apply pending migrations in one transaction, under an advisory lock; return them."""
    applied: list[Migration] = []
    async with conn.transaction():
        # Two replicas starting together must not both apply the same file.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrations:{schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.{MIGRATIONS_TABLE} (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        for migration in await pending_migrations(conn, schema=schema, directory=directory):
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.{MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied.append(migration)
    return applied
