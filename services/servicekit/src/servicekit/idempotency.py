"""Processed-event records: a consumer does an event's work once however often it arrives."""

from collections.abc import Sequence
from typing import TypeVar

import structlog

from contracts import Event
from servicekit.db import Connection, Database

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)


async def mark_processed(conn: Connection, event: Event) -> bool:
    """Record the event as processed; return False when it already was (a duplicate)."""
    return bool(await mark_processed_many(conn, [event]))


async def mark_processed_many(conn: Connection, events: Sequence[E]) -> list[E]:
    """Record events as processed; return those not processed before, once each, in order."""
    if not events:
        return []
    rows = await conn.fetch(
        """INSERT INTO processed_events (event_id, event_type)
           SELECT * FROM unnest($1::uuid[], $2::text[])
           ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
        [event.event_id for event in events],
        [event.event_type for event in events],
    )
    new = {row["event_id"] for row in rows}
    fresh: list[E] = []
    for event in events:
        if event.event_id in new:
            new.discard(event.event_id)  # a record delivered twice in one batch counts once
            fresh.append(event)
    return fresh


async def note_received(db: Database, event: Event) -> bool:
    """Record and log an event a service does not act on yet; return False for a duplicate."""
    async with db.pool.acquire() as conn:
        fresh = await mark_processed(conn, event)
    log.info(
        "event received",
        event_type=event.event_type,
        event_id=str(event.event_id),
        key=event.partition_key(),
        duplicate=not fresh,
    )
    return fresh
