"""The unit of work: one transaction that claims events, writes state and stages events.

Every handler and background task of a service does its writes the same way:

    async with uow_factory() as uow:
        fresh = await uow.claim(events)          # skip what was handled before
        ...service layer writes through uow.repo...
        uow.publish(outgoing)                    # into the outbox, in the same transaction

Leaving the block without an error writes the staged events to the outbox and commits;
an error rolls everything back, claims included, so a retry finds the events unclaimed.
The service layer sees only the `Work` protocol, so tests can hand it an in-memory fake.
Events staged carry the correlation id of the events claimed (or of `correlate`'s cause):
see servicekit.tracing.
"""

import contextlib
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar
from uuid import UUID

from contracts import Event
from servicekit.db import Connection, Database
from servicekit.idempotency import mark_processed_many
from servicekit.outbox import enqueue
from servicekit.tracing import Causation

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
E = TypeVar("E", bound=Event)


class Work(Protocol[R_co]):
    """What the service layer may do inside a unit of work."""

    @property
    def repo(self) -> R_co:
        """Return the service's write repository, bound to this transaction."""
        ...

    async def claim(self, events: Sequence[E]) -> list[E]:
        """Record events as handled; return those not handled before, once each, in order."""
        ...

    def publish(self, events: Iterable[Event]) -> None:
        """Stage events to go out if, and only if, the transaction commits."""
        ...

    def correlate(self, correlation_id: UUID) -> None:
        """Name the cause of the events staged from now on, when no claimed event did."""
        ...

    async def try_lock(self, name: str) -> bool:
        """Take a lock held until the transaction ends; return False when another holds it."""
        ...


class UnitOfWork(Generic[R]):
    """A PostgreSQL transaction with the service's repository, idempotency and outbox."""

    def __init__(self, db: Database, repository: Callable[[Connection], R]) -> None:
        self._db = db
        self._repository = repository
        self._stack: contextlib.AsyncExitStack | None = None
        self._conn: Connection | None = None
        self._repo: R | None = None
        self._staged: list[Event] = []
        self._causation = Causation()
        self.published = 0

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            self._conn = await stack.enter_async_context(self._db.pool.acquire())
            await stack.enter_async_context(self._conn.transaction())
            self._stack = stack.pop_all()
        self._repo = self._repository(self.conn)
        self._staged = []
        self._causation.reset()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is None or self._conn is None:
            raise RuntimeError("the unit of work is not open")
        stack, conn, staged = self._stack, self._conn, self._staged
        self._stack, self._conn, self._repo, self._staged = None, None, None, []
        if exc_type is not None:
            await stack.__aexit__(exc_type, exc, tb)  # rolls back, then releases the connection
            return
        # Staged events join the outbox inside the transaction: state and events commit together.
        async with stack:
            self.published = await enqueue(conn, staged)

    @property
    def conn(self) -> Connection:
        """Return the transaction's connection (for what a repository does not cover)."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    @property
    def repo(self) -> R:
        """Return the service's write repository, bound to this transaction."""
        if self._repo is None:
            raise RuntimeError("the unit of work is not open")
        return self._repo

    async def claim(self, events: Sequence[E]) -> list[E]:
        """Record events as handled; return those not handled before, once each, in order."""
        fresh = await mark_processed_many(self.conn, events)
        self._causation.claimed(fresh or events)
        return fresh

    def publish(self, events: Iterable[Event]) -> None:
        """Stage events to go out if, and only if, the transaction commits."""
        self._staged.extend(self._causation.stamp(events))

    def correlate(self, correlation_id: UUID) -> None:
        """Name the cause of the events staged from now on, when no claimed event did."""
        self._causation.caused_by(correlation_id)

    async def try_lock(self, name: str) -> bool:
        """Take an advisory lock held until the transaction ends; False when another holds it."""
        # Advisory locks are database-wide; scoping the key by schema keeps two services (or a
        # test's scratch schema) sharing one database from skipping each other's work.
        return bool(
            await self.conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext(coalesce(current_schema(), '') || ':' || $1))",
                name,
            )
        )


UnitOfWorkFactory = Callable[[], contextlib.AbstractAsyncContextManager[Work[R]]]
"""What handlers and workers get: a new unit of work per call (a fake one in unit tests)."""


def unit_of_work_factory(db: Database, repository: Callable[[Connection], R]) -> Callable[[], UnitOfWork[R]]:
    """Return a factory of units of work over the service's database and repository."""
    return lambda: UnitOfWork(db, repository)
