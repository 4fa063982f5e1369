"""`pricestream trace ID`: what an event, or a scrape run, caused across the services.

Every service records the events it handled in its `processed_events` table with their
correlation id, and keeps the events it has yet to publish in its `outbox`. Given an event
id, a correlation id or a scrape run id, the trace gathers the events sharing that
correlation id from every service's schema: who produced each, when, and who handled it.
Events of topics that no service consumes are found by their `correlation_id` header.
"""

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import typer
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from contracts import CODEC, SERVICES, TOPICS, ContractError, Event
from contracts.codec import CORRELATION_HEADER
from pricestream.config import StackConfig, find_home
from pricestream.exits import FAILED
from pricestream.kafka import high_watermarks, partitions_of, read_partition
from pricestream.processes import UnreachableError
from pricestream.stack import Stack
from servicekit.tracing import correlation_for

console = Console()
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class TracedEvent:
    """One event of a trace: what it was, who produced it, and who has handled it so far."""

    event_id: UUID
    event_type: str
    producer: str
    occurred_at: datetime | None
    handled_by: dict[str, datetime] = field(default_factory=dict)
    waiting_in_outbox: bool = False
    unconsumed_on: str | None = None
    """The topic it was read from, when no service consumes that topic."""


@dataclass
class Trace:
    """The events sharing one correlation id, oldest first."""

    asked: str
    correlation_id: UUID
    events: list[TracedEvent]

    def as_dict(self) -> dict[str, Any]:
        """Return the trace as plain JSON-ready data."""
        return {
            "asked": self.asked,
            "correlation_id": str(self.correlation_id),
            "events": [
                {
                    "event_id": str(e.event_id),
                    "event_type": e.event_type,
                    "producer": e.producer,
                    "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
                    "handled_by": {name: at.isoformat() for name, at in sorted(e.handled_by.items())},
                    "waiting_in_outbox": e.waiting_in_outbox,
                    "unconsumed_on": e.unconsumed_on,
                }
                for e in self.events
            ],
        }


def correlation_candidates(asked: str) -> list[UUID]:
    """Return what an id may stand for: itself when it is a UUID, else the correlation of a run id."""
    try:
        return [UUID(asked)]
    except ValueError:
        return [correlation_for(asked)]


async def find_trace(
    dsn: str, asked: str, *, bootstrap_servers: str | None = None, schemas: Sequence[str] = SERVICES
) -> Trace:
    """Gather from each service's schema the events correlated with `asked` (event, correlation or run id)."""
    conn = await asyncpg.connect(dsn)
    try:
        present = {
            row["table_schema"]
            for row in await conn.fetch(
                "SELECT table_schema FROM information_schema.columns"
                " WHERE table_name = 'processed_events' AND column_name = 'correlation_id'"
                " AND table_schema = ANY($1::text[])",
                list(schemas),
            )
        }
        ordered = [schema for schema in schemas if schema in present]
        correlation_id = correlation_candidates(asked)[0]
        # An event id stands for the correlation id it carries.
        for schema in ordered:
            carried = await conn.fetchval(
                f"SELECT correlation_id FROM {schema}.processed_events WHERE event_id = $1", correlation_id
            )
            if carried is not None:
                correlation_id = carried
                break
        events: dict[UUID, TracedEvent] = {}
        for schema in ordered:
            for row in await conn.fetch(
                f"SELECT event_id, event_type, producer, occurred_at, processed_at"
                f" FROM {schema}.processed_events WHERE correlation_id = $1",
                correlation_id,
            ):
                event = events.setdefault(
                    row["event_id"],
                    TracedEvent(
                        row["event_id"], row["event_type"], row["producer"] or "?", row["occurred_at"]
                    ),
                )
                event.handled_by[schema] = row["processed_at"]
            for row in await conn.fetch(
                f"SELECT value, headers FROM {schema}.outbox WHERE headers->>'correlation_id' = $1",
                str(correlation_id),
            ):
                _add_waiting(events, row["value"], json.loads(row["headers"]))
    finally:
        await conn.close()
    if bootstrap_servers is not None:
        for topic in (spec.name for spec in TOPICS if not spec.consumers):
            for found in await _read_correlated(bootstrap_servers, topic, correlation_id):
                traced = events.setdefault(
                    found.event_id,
                    TracedEvent(found.event_id, found.event_type, found.producer, found.occurred_at),
                )
                traced.unconsumed_on = topic
    ordered_events = sorted(events.values(), key=lambda e: (e.occurred_at or _NEVER, e.event_type))
    return Trace(asked, correlation_id, ordered_events)


async def _read_correlated(bootstrap_servers: str, topic: str, correlation_id: UUID) -> list[Event]:
    """Return a topic's events whose correlation header is this id, reading every partition once."""
    wanted = str(correlation_id).encode()
    found: list[Event] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        await consumer.start()
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            return []
        starts = await consumer.beginning_offsets(partitions)
        ends = await high_watermarks(bootstrap_servers, starts)
        for tp in partitions:
            for record in await read_partition(consumer, tp, starts[tp], ends[tp]):
                headers = dict(record.headers or ())
                if headers.get(CORRELATION_HEADER) == wanted:
                    with contextlib.suppress(ContractError):
                        found.append(CODEC.decode(record.value or b"", headers))
    finally:
        await consumer.stop()
    return found


def _add_waiting(events: dict[UUID, TracedEvent], value: bytes, headers: dict[str, str]) -> None:
    """Add an outbox row's event to the trace, marked as not yet published."""
    try:
        decoded = CODEC.decode(value, headers)
    except ContractError:
        return  # an outbox row is written by the codec: an unreadable one is no part of a trace
    event = events.setdefault(
        decoded.event_id,
        TracedEvent(decoded.event_id, decoded.event_type, decoded.producer, decoded.occurred_at),
    )
    event.waiting_in_outbox = True


def trace_tree(trace: Trace) -> Tree:
    """Return the trace as a tree: producer, then event type with counts, then who handled them."""
    first = min((e.occurred_at for e in trace.events if e.occurred_at), default=None)
    last = max((e.occurred_at for e in trace.events if e.occurred_at), default=None)
    span = f", {first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} UTC" if first and last else ""
    tree = Tree(f"[bold]correlation {trace.correlation_id}[/bold] ({len(trace.events)} events{span})")
    by_producer: dict[str, dict[str, list[TracedEvent]]] = defaultdict(lambda: defaultdict(list))
    for event in trace.events:
        by_producer[event.producer][event.event_type].append(event)
    for producer, kinds in by_producer.items():
        branch = tree.add(f"[green]{producer}[/green]")
        for kind, events in kinds.items():
            handled: dict[str, int] = defaultdict(int)
            for event in events:
                for service in event.handled_by:
                    handled[service] += 1
            waiting = sum(e.waiting_in_outbox for e in events)
            detail = ", ".join(f"{name} {count}" for name, count in sorted(handled.items()))
            if not detail:
                unconsumed = events[0].unconsumed_on
                detail = f"nobody (no service consumes {unconsumed})" if unconsumed else "nobody yet"
            more = f"; {waiting} waiting in the outbox" if waiting else ""
            branch.add(f"{kind} x{len(events)} -> handled by {detail}{more}")
    return tree


def trace_table(trace: Trace, *, limit: int) -> Table:
    """Return the trace's first events in time order, one row each."""
    table = Table(title=f"events in time order ({min(limit, len(trace.events))} of {len(trace.events)})")
    for column in ("occurred at (UTC)", "producer", "event", "event id", "handled by"):
        table.add_column(column)
    for event in trace.events[:limit]:
        handled = ", ".join(sorted(event.handled_by)) + (" (in outbox)" if event.waiting_in_outbox else "")
        if event.unconsumed_on and not event.handled_by:
            handled = f"({event.unconsumed_on}: no consumer)"
        table.add_row(
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S.%f}"[:-3] if event.occurred_at else "?",
            event.producer,
            event.event_type,
            str(event.event_id),
            handled,
        )
    return table


def trace_command(
    event: Annotated[str, typer.Argument(help="An event id, a correlation id, or a scrape run id (run-...)")],
    home: Annotated[
        Path | None,
        typer.Option(envvar="PRICESTREAM_HOME", help="State folder (default: .pricestream/ in the project)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Events listed in the time-ordered table")] = 20,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout (every event of the trace)")
    ] = False,
) -> None:
    """Show what an event or a scrape run caused across the services: a tree, then events in time order."""
    stack = Stack(StackConfig.load(home.resolve() if home else find_home()))
    if not stack.config.state_file.exists():
        raise UnreachableError(f"no stack at {stack.config.home}: run `pricestream up` (or give --home)")
    dsn = stack.postgres.dsn(database=stack.config.database)
    trace = asyncio.run(find_trace(dsn, event, bootstrap_servers=stack.config.bootstrap_servers))
    if json_out:
        typer.echo(json.dumps(trace.as_dict(), indent=2))
    else:
        console.print(trace_tree(trace))
        if trace.events and limit:
            console.print(trace_table(trace, limit=limit))
    if not trace.events:
        if not json_out:
            console.print(f"no events carry correlation id {trace.correlation_id}")
        raise typer.Exit(FAILED)
