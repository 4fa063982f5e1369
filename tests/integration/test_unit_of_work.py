"""servicekit's unit of work and migration sets against the stack's real PostgreSQL."""

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from contracts.events import RescrapeRequested
from contracts.events.v1 import RescrapeRequestedPayload
from pricestream.stack import Stack
from servicekit.db import (
    KIT_MIGRATIONS,
    KIT_MIGRATIONS_TABLE,
    Connection,
    Database,
    adopt_legacy_layout,
    applied_versions,
    load_migrations,
    migrate,
)
from servicekit.housekeeping import ProcessedEventsPruner
from servicekit.outbox import channel_of
from servicekit.settings import ServiceSettings
from servicekit.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

SCHEMA = "uowtest"


class Notes:
    """A tiny repository for the test: one table of notes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, text: str) -> None:
        """Write a note."""
        await self.conn.execute("INSERT INTO notes (text) VALUES ($1)", text)


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """A connected Database over an empty scratch schema with servicekit's tables and `notes`."""
    admin = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    await migrate(admin, schema=SCHEMA, directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE)
    await admin.execute(f"CREATE TABLE {SCHEMA}.notes (text text NOT NULL)")
    settings = ServiceSettings(
        service_name=SCHEMA, database_url=stack.postgres.dsn(database=stack.config.database)
    )
    database = Database(settings, KIT_MIGRATIONS)
    await database.connect()
    yield database
    await database.close()
    await admin.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
    await admin.close()


def _event(store: str) -> RescrapeRequested:
    return RescrapeRequested.new(
        producer="grouping", payload=RescrapeRequestedPayload(chain="coles", store_id=store, reason="manual")
    )


async def _count(db: Database, table: str) -> int:
    count: int = await db.pool.fetchval(f"SELECT count(*) FROM {table}")
    return count


async def test_a_clean_exit_commits_claims_writes_and_staged_events_together(db: Database) -> None:
    event = _event("s1")
    async with UnitOfWork(db, Notes) as uow:
        assert await uow.claim([event, event]) == [event], "a record twice in one batch counts once"
        await uow.repo.add("hello")
        uow.publish([_event("s2")])
    assert uow.published == 1
    assert (await _count(db, "notes"), await _count(db, "outbox"), await _count(db, "processed_events")) == (
        1,
        1,
        1,
    )
    async with UnitOfWork(db, Notes) as again:
        assert await again.claim([event]) == [], "a redelivered event is not handed out twice"


async def test_ids_of_events_no_topic_can_deliver_again_are_forgotten_and_the_rest_kept(
    db: Database,
) -> None:
    old, recent = _event("s1"), _event("s2")
    async with UnitOfWork(db, Notes) as uow:
        await uow.claim([old, recent])
    now = datetime.now(UTC)
    await db.pool.execute(
        "UPDATE processed_events SET processed_at = $1 WHERE event_id = $2",
        now - timedelta(days=46),
        old.event_id,
    )
    pruner = ProcessedEventsPruner(db, keep=timedelta(days=45), every_s=3600, clock=lambda: now)
    assert await pruner.prune_once() == 1
    assert await pruner.prune_once() == 0
    async with UnitOfWork(db, Notes) as again:
        # The recent one is still known; the forgotten one could only come back by a manual replay.
        assert await again.claim([recent, old]) == [old]
    stopping = asyncio.Event()
    stopping.set()
    await asyncio.wait_for(pruner.run(stopping), timeout=5)  # a stopping service does not wait an hour


async def test_a_commit_with_events_staged_wakes_the_relay_and_one_without_does_not(
    stack: Stack, db: Database
) -> None:
    listener = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    notices: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(channel_of(SCHEMA), lambda *args: notices.put_nowait(args[2]))
    try:
        async with UnitOfWork(db, Notes) as quiet:
            await quiet.repo.add("no events")
        async with UnitOfWork(db, Notes) as busy:
            busy.publish([_event("s1"), _event("s2")])
            assert notices.empty(), "nothing is announced before the commit"
        assert await asyncio.wait_for(notices.get(), timeout=5) == channel_of(SCHEMA)
        await asyncio.sleep(0.2)
        assert notices.empty(), "one notice a transaction, and none for the one without events"
    finally:
        await listener.close()


async def _claim_write_stage_then_fail(db: Database, event: RescrapeRequested) -> None:
    async with UnitOfWork(db, Notes) as uow:
        await uow.claim([event])
        await uow.repo.add("lost")
        uow.publish([_event("s2")])
        raise RuntimeError("boom")


async def test_staged_events_carry_the_claimed_events_correlation_and_claims_record_it(db: Database) -> None:
    cause = RescrapeRequested.new(
        producer="grouping",
        payload=RescrapeRequestedPayload(chain="coles", store_id="s1", reason="manual"),
        correlation_id=uuid4(),
    )
    async with UnitOfWork(db, Notes) as uow:
        await uow.claim([cause])
        uow.publish([_event("s2")])
    headers = json.loads(await db.pool.fetchval("SELECT headers FROM outbox"))
    assert headers["correlation_id"] == str(cause.correlation_id)
    recorded = await db.pool.fetchrow("SELECT correlation_id, producer, occurred_at FROM processed_events")
    assert recorded is not None
    assert tuple(recorded) == (cause.correlation_id, "grouping", cause.occurred_at)


async def test_an_error_rolls_back_claims_writes_and_staged_events(db: Database) -> None:
    event = _event("s1")
    with pytest.raises(RuntimeError, match="boom"):
        await _claim_write_stage_then_fail(db, event)
    assert (await _count(db, "notes"), await _count(db, "outbox"), await _count(db, "processed_events")) == (
        0,
        0,
        0,
    )
    async with UnitOfWork(db, Notes) as retry:
        assert await retry.claim([event]) == [event], "the retry finds the event unclaimed"


async def test_the_advisory_lock_is_held_until_the_transaction_ends(db: Database) -> None:
    async with UnitOfWork(db, Notes) as first:
        assert await first.try_lock("uowtest.cycle")
        async with UnitOfWork(db, Notes) as second:
            assert not await second.try_lock("uowtest.cycle")
    async with UnitOfWork(db, Notes) as later:
        assert await later.try_lock("uowtest.cycle")


async def test_the_advisory_lock_is_per_schema_so_services_sharing_a_database_do_not_block(
    db: Database, stack: Stack
) -> None:
    dsn = stack.postgres.dsn(database=stack.config.database)
    admin = await asyncpg.connect(dsn)
    await admin.execute("DROP SCHEMA IF EXISTS uowother CASCADE; CREATE SCHEMA uowother")
    other = Database(ServiceSettings(service_name="uowother", database_url=dsn), KIT_MIGRATIONS)
    await other.connect()
    try:
        async with UnitOfWork(db, Notes) as here:
            assert await here.try_lock("shared.cycle")
            async with UnitOfWork(other, Notes) as there:
                assert await there.try_lock("shared.cycle"), "another schema's lock of that name is its own"
    finally:
        await other.close()
        await admin.execute("DROP SCHEMA uowother CASCADE")
        await admin.close()


async def test_a_database_from_before_servicekit_owned_its_tables_is_renumbered(
    stack: Stack, tmp_path: Path
) -> None:
    """The old layout: 0001_processed_events, then the service's files one number higher."""
    service = Path(str(files("grouping") / "migrations"))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "0001_processed_events.sql").write_text(
        "CREATE TABLE processed_events (event_id uuid PRIMARY KEY, event_type text NOT NULL,"
        " processed_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE outbox (id bigserial PRIMARY KEY, topic text NOT NULL, key bytea NOT NULL,"
        " value bytea NOT NULL, headers jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
    )
    for migration in load_migrations(service):
        shutil.copy(
            service / f"{migration.version:04d}_{migration.name}.sql",
            legacy / f"{migration.version + 1:04d}_{migration.name}.sql",
        )
    conn = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS legacytest CASCADE; CREATE SCHEMA legacytest")
        await migrate(conn, schema="legacytest", directory=legacy)
        await conn.execute(
            "INSERT INTO legacytest.processed_events (event_id, event_type) VALUES (gen_random_uuid(), 'x')"
        )

        assert await adopt_legacy_layout(conn, schema="legacytest", directory=service)
        assert not await adopt_legacy_layout(conn, schema="legacytest", directory=service), "only once"
        assert await migrate(
            conn, schema="legacytest", directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE
        ), "servicekit's set is recorded"
        assert await migrate(conn, schema="legacytest", directory=service) == [], "nothing applied twice"
        assert await applied_versions(conn, schema="legacytest") == {
            m.version: m.checksum for m in load_migrations(service)
        }
        assert await conn.fetchval("SELECT count(*) FROM legacytest.processed_events") == 1, "kept"
    finally:
        await conn.execute("DROP SCHEMA IF EXISTS legacytest CASCADE")
        await conn.close()
