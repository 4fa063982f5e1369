"""The transactional outbox: events written with state, published by a relay afterwards.

A producer inserts its outgoing events into its own `outbox` table in the same
transaction as the state change that caused them, so a crash can lose neither. The relay
publishes pending rows in id order and deletes them once the broker acknowledged them;
a crash between the two publishes a row again, which idempotent consumers absorb.

The transaction also notifies the schema's channel, which PostgreSQL delivers at commit: the
relay sleeps until then instead of polling the table (20 polls a second in each of a stack's
services, a tenth of a core, when they did). It still looks once a second, should a notice
be missed while its connection was being replaced.
"""

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import structlog
from faststream.kafka import KafkaBroker

from contracts import CODEC, Event, topic_for
from servicekit.db import Connection, Database
from servicekit.metrics import Metrics

log = structlog.get_logger(__name__)

OUTBOX_COLUMNS = ("topic", "key", "value", "headers")


async def enqueue(conn: Connection, events: Iterable[Event]) -> int:
    """Add events to the outbox inside the caller's transaction; return how many."""
    rows = []
    for event in events:
        record = CODEC.encode(event)
        headers = json.dumps({name: value.decode() for name, value in record.headers})
        rows.append((topic_for(type(event)).name, record.key, record.value, headers))
    if rows:
        await conn.copy_records_to_table("outbox", records=rows, columns=OUTBOX_COLUMNS)
        # Sent at commit, once per transaction however often it is asked.
        await conn.execute("SELECT pg_notify(current_schema() || $1, '')", CHANNEL_SUFFIX)
    return len(rows)


CHANNEL_SUFFIX = "_outbox"


def channel_of(schema: str) -> str:
    """Return the channel on which a schema's transactions announce new outbox rows."""
    return f"{schema}{CHANNEL_SUFFIX}"


class OutboxRelay:
    """Publish the outbox in order; one relay per service holds an advisory lock."""

    def __init__(
        self,
        *,
        db: Database,
        broker: KafkaBroker,
        metrics: Metrics,
        batch_size: int = 1000,
        idle_s: float = 1.0,
    ) -> None:
        self.db = db
        self.broker = broker
        self.metrics = metrics
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.published = 0

    name = "outbox-relay"

    async def run(self, stopping: asyncio.Event) -> None:
        """Relay until stopping is set, then flush what is pending; retry on failures."""
        lock_key = f"{self.db.schema}.outbox-relay"
        delay = 0.2
        while not stopping.is_set():
            try:
                async with self.db.pool.acquire() as lock_conn:
                    # Two relays would publish one key's events out of order: only one runs.
                    while not await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
                        if await _wait(stopping, 1.0):
                            return
                    try:
                        await self._relay_while_notified(lock_conn, stopping)
                        return
                    finally:
                        await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
            except Exception as exc:
                log.warning("outbox relay failed, retrying", error=str(exc), retry_in_s=delay)
                await _wait(stopping, delay)
                delay = min(max(delay * 2, 0.2), 5.0)

    async def _relay_while_notified(self, conn: Connection, stopping: asyncio.Event) -> None:
        """Publish whenever a transaction announces rows (or a second passes), until stopping; then flush."""
        channel = channel_of(self.db.schema)
        woken = asyncio.Event()

        def wake(*_: object) -> None:
            woken.set()

        await conn.add_listener(channel, wake)
        try:
            while True:
                woken.clear()  # before looking: a notice while it publishes wakes the next look
                sent = await self.relay_once()
                if sent < self.batch_size and await _wait(stopping, self.idle_s, woken):
                    await self.relay_once()
                    return
        finally:
            await conn.remove_listener(channel, wake)

    async def relay_once(self) -> int:
        """Publish one batch of pending rows and delete them; return how many were sent."""
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1", self.batch_size
            )
            if not rows:
                return 0
            pending: list[asyncio.Future[Any]] = []
            for row in rows:
                headers: dict[str, str] = json.loads(row["headers"])
                pending.append(
                    await self.broker.publish(
                        row["value"], topic=row["topic"], key=row["key"], headers=headers, no_confirm=True
                    )
                )
            # Every send must be acknowledged before the rows go: else they are sent again.
            await asyncio.gather(*pending)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [row["id"] for row in rows])
        for row in rows:
            self.metrics.published.labels(row["topic"]).inc()
        self.published += len(rows)
        return len(rows)

    async def pending(self) -> int:
        """Return how many events wait in the outbox."""
        count: int = await self.db.pool.fetchval("SELECT count(*) FROM outbox")
        return count


async def _wait(stopping: asyncio.Event, seconds: float, woken: asyncio.Event | None = None) -> bool:
    """Sleep up to `seconds`, or until woken; return True as soon as stopping is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in (stopping, woken) if e is not None]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return stopping.is_set()
