"""An in-memory unit of work: claims, staged events and commits, with rollback on error."""

import copy
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Generic, Self, TypeVar
from uuid import UUID

from contracts import Event
from servicekit.tracing import Causation

R = TypeVar("R")
E = TypeVar("E", bound=Event)


class FakeUnitOfWork(Generic[R]):
    """Stands in for servicekit's UnitOfWork over an in-memory repository.

    Like a transaction, an error inside the block restores the repository and the claims
    as they were and publishes nothing; leaving it cleanly appends the staged events to
    `published`. Use the same instance for every block: `async with uow: ...`.
    """

    def __init__(self, repo: R) -> None:
        self.repo = repo
        self.claimed: set[object] = set()
        self.published: list[Event] = []
        self.commits = 0
        self.rollbacks = 0
        self.locked_by_others: set[str] = set()
        self._staged: list[Event] = []
        self._saved: tuple[R, set[object]] | None = None
        self._causation = Causation()

    def __call__(self) -> Self:
        """Act as its own factory, so it can be passed where a factory is expected."""
        return self

    async def __aenter__(self) -> Self:
        self._saved = (copy.deepcopy(self.repo), set(self.claimed))
        self._staged = []
        self._causation.reset()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._saved is not None
        if exc_type is None:
            self.published.extend(self._staged)
            self.commits += 1
        else:
            self.repo, self.claimed = self._saved
            self.rollbacks += 1
        self._staged, self._saved = [], None

    async def claim(self, events: Sequence[E]) -> list[E]:
        """Return the events not claimed before, once each, in order."""
        fresh = []
        for event in events:
            if event.event_id not in self.claimed:
                self.claimed.add(event.event_id)
                fresh.append(event)
        self._causation.claimed(fresh or events)
        return fresh

    def publish(self, events: Iterable[Event]) -> None:
        """Stage events for the commit, carrying the correlation id of their cause."""
        self._staged.extend(self._causation.stamp(events))

    def correlate(self, correlation_id: UUID) -> None:
        """Name the cause of the events staged from now on, when no claimed event did."""
        self._causation.caused_by(correlation_id)

    async def try_lock(self, name: str) -> bool:
        """Return False for locks a test says another replica holds."""
        return name not in self.locked_by_others

    def published_of(self, kind: type[E]) -> list[E]:
        """Return the published events of one type, in order."""
        return [event for event in self.published if isinstance(event, kind)]
