"""asyncpg pool bound to the service's schema, and the SQL migrations runner."""

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from servicekit.settings import ServiceSettings

MIGRATIONS_TABLE = "schema_migrations"
"""Where a service's own migrations are recorded, in its schema."""
KIT_MIGRATIONS_TABLE = "servicekit_migrations"
"""Where servicekit's migrations (processed events, outbox) are recorded, in the same schema."""
KIT_MIGRATIONS = Path(str(files("servicekit") / "migrations"))

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, on its own or borrowed from a pool."""


def rows_affected(status: str) -> int:
    """Return the row count of a command tag such as `DELETE 12` or `INSERT 0 12`."""
    return int(status.rsplit(" ", 1)[-1])


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
        """Apply servicekit's pending migrations, then the service's own."""
        async with self.pool.acquire() as conn:
            kit = await migrate(
                conn, schema=self.schema, directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE
            )
            await adopt_legacy_layout(conn, schema=self.schema, directory=self.migrations)
            return kit + await migrate(conn, schema=self.schema, directory=self.migrations)

    async def check(self, timeout: float) -> dict[str, bool]:
        """Tell whether the database answers and every migration is applied."""
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                await conn.fetchval("SELECT 1", timeout=timeout)
                pending = await pending_migrations(
                    conn, schema=self.schema, directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE
                ) + await pending_migrations(conn, schema=self.schema, directory=self.migrations)
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


async def applied_versions(conn: Connection, *, schema: str, table: str = MIGRATIONS_TABLE) -> dict[int, str]:
    """Return applied versions and their checksums (empty when none ever ran)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.{table}")
    if not exists:
        return {}
    rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.{table}")
    return {row["version"]: row["checksum"] for row in rows}


async def pending_migrations(
    conn: Connection, *, schema: str, directory: Path, table: str = MIGRATIONS_TABLE
) -> list[Migration]:
    """Return the migrations not yet applied; raise if an applied one was edited since."""
    applied = await applied_versions(conn, schema=schema, table=table)
    pending = []
    for migration in load_migrations(directory):
        checksum = applied.get(migration.version)
        if checksum is None:
            pending.append(migration)
        elif checksum != migration.checksum:
            raise RuntimeError(f"applied migration {migration.version:04d}_{migration.name} was edited since")
    return pending


async def migrate(
    conn: Connection, *, schema: str, directory: Path, table: str = MIGRATIONS_TABLE
) -> list[Migration]:
    """Apply pending migrations in one transaction, under an advisory lock; return them."""
    applied: list[Migration] = []
    async with conn.transaction():
        # Two replicas starting together must not both apply the same file.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrations:{schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.{table} (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        for migration in await pending_migrations(conn, schema=schema, directory=directory, table=table):
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.{table} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied.append(migration)
    return applied


LEGACY_FIRST_MIGRATION = "processed_events"
"""What every service's migration 1 was before servicekit owned processed_events and outbox."""


async def adopt_legacy_layout(conn: Connection, *, schema: str, directory: Path) -> bool:
    """Renumber a database migrated before servicekit owned its tables; return whether it was one.

    Such a database recorded `0001_processed_events` and then the service's files one
    number higher, the first of them with the outbox inside. Those tables are servicekit's
    now (its migration creates them only if missing), so version v becomes v - 1 with the
    current file's checksum, and nothing is applied twice.
    """
    table = f"{schema}.{MIGRATIONS_TABLE}"
    async with conn.transaction():
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            return False
        first = await conn.fetchval(f"SELECT name FROM {table} WHERE version = 1")
        if first != LEGACY_FIRST_MIGRATION:
            return False
        current = {m.version: m for m in load_migrations(directory)}
        rows = await conn.fetch(f"SELECT version, name FROM {table} WHERE version > 1 ORDER BY version")
        await conn.execute(f"DELETE FROM {table}")
        for row in rows:
            migration = current.get(row["version"] - 1)
            if migration is None or migration.name != row["name"]:
                raise RuntimeError(
                    f"{schema}: applied migration {row['version']:04d}_{row['name']} has no counterpart "
                    "in this release's renumbered migrations"
                )
            await conn.execute(
                f"INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    return True
