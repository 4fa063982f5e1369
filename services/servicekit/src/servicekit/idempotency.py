"""Processed-event records: a consumer does an event's work once however often it arrives."""

from collections.abc import Sequence
from typing import TypeVar

from contracts import Event
from servicekit.db import Connection

E = TypeVar("E", bound=Event)


async def mark_processed_many(conn: Connection, events: Sequence[E]) -> list[E]:
    """Record events as processed; return those not processed before, once each, in order."""
    if not events:
        return []
    rows = await conn.fetch(
        """INSERT INTO processed_events (event_id, event_type, correlation_id, producer, occurred_at)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[])
           ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
        [event.event_id for event in events],
        [event.event_type for event in events],
        [event.correlation_id for event in events],
        [event.producer for event in events],
        [event.occurred_at for event in events],
    )
    new = {row["event_id"] for row in rows}
    fresh: list[E] = []
    for event in events:
        if event.event_id in new:
            new.discard(event.event_id)  # a record delivered twice in one batch counts once
            fresh.append(event)
    return fresh
