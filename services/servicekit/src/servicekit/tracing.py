"""Correlation: every event carries the correlation id of what caused it.

A unit of work learns its cause from the events it claims (their correlation id) or
from the caller (a scrape run's id), and stamps it on every event it stages. Events
staged without any cause share the correlation id of the first of them, so one request's
events still hang together. A batch of events from several causes is attributed to the
first event's cause: one outgoing event cannot name two.
"""

from collections.abc import Iterable, Sequence
from uuid import UUID, uuid5

from contracts import Event

RUN_NAMESPACE = UUID("0b9f4d3e-7c55-4b8e-9a53-2f6c1d0e8a71")
"""The namespace of correlation ids derived from names (scrape run ids), fixed forever."""


def correlation_for(name: str) -> UUID:
    """Return the correlation id of a named cause, such as a scrape run id (stable across restarts)."""
    return uuid5(RUN_NAMESPACE, name)


class Causation:
    """What a unit of work knows of its cause, and the stamping of its outgoing events."""

    def __init__(self) -> None:
        self.cause: UUID | None = None

    def reset(self) -> None:
        """Forget the cause (a new unit of work begins)."""
        self.cause = None

    def caused_by(self, correlation_id: UUID) -> None:
        """Take this correlation id as the cause, unless one is known already."""
        if self.cause is None:
            self.cause = correlation_id

    def claimed(self, events: Sequence[Event]) -> None:
        """Take the cause from claimed events: the first one's correlation id."""
        if events:
            self.caused_by(events[0].correlation_id)

    def stamp(self, events: Iterable[Event]) -> list[Event]:
        """Return the events carrying the cause's correlation id (the first one's, when none is known)."""
        stamped: list[Event] = []
        for event in events:
            if self.cause is None:
                self.cause = event.correlation_id
            if event.correlation_id != self.cause and event.correlation_id == event.event_id:
                # Only an event still correlated with itself is re-stamped: one whose producer
                # chose a correlation on purpose keeps it.
                event = event.model_copy(update={"correlation_id": self.cause})
            stamped.append(event)
        return stamped
