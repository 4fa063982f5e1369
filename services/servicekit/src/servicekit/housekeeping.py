"""Forget handled events once no topic can deliver them again, so `processed_events` stays bounded.

A consumer records every event id it handles, to do an event's work once however often it
arrives. An id is only needed while the broker can still deliver its event again: for as long
as the topic, or its dead-letter topic (from which `pricestream dlq replay` sends it back),
keeps it. Older records only serve `pricestream trace`, which thus reaches back as far as
the records are kept.
"""

import asyncio
from datetime import datetime, timedelta

import structlog

from servicekit.clock import Clock, utc_now
from servicekit.db import Connection, Database, rows_affected
from servicekit.service import repeat
from servicekit.settings import REDELIVERABLE_FOR

log = structlog.get_logger(__name__)


async def forget_processed(conn: Connection, *, before: datetime) -> int:
    """Delete the records of events handled before `before`; return how many."""
    status = await conn.execute("DELETE FROM processed_events WHERE processed_at < $1", before)
    return rows_affected(status)


class ProcessedEventsPruner:
    """Every `every_s`, forget the events handled longer ago than `keep`."""

    name = "processed-events-pruner"

    def __init__(self, db: Database, *, keep: timedelta, every_s: float, clock: Clock = utc_now) -> None:
        if keep < REDELIVERABLE_FOR:
            raise ValueError(
                f"processed events kept {keep.days} days: the topics keep events up to "
                f"{REDELIVERABLE_FOR.days} days, and one delivered again after its record went "
                "would be applied twice"
            )
        self.db = db
        self.keep = keep
        self.every_s = every_s
        self.clock = clock

    async def run(self, stopping: asyncio.Event) -> None:
        """Prune at once and then every `every_s` until stopping is set."""
        await repeat(
            "forgetting old processed events", self.prune_once, every_s=self.every_s, stopping=stopping
        )

    async def prune_once(self) -> int:
        """Forget the events handled before the kept window; return how many."""
        before = self.clock() - self.keep
        async with self.db.pool.acquire() as conn:
            forgotten = await forget_processed(conn, before=before)
        if forgotten:
            log.info("forgot old processed events", rows=forgotten, handled_before=before.isoformat())
        return forgotten
