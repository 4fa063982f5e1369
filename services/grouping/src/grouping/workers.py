"""The grouping cycle's background loop: one replica at a time runs a cycle, every few seconds."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from prometheus_client import CollectorRegistry, Gauge

from grouping.domain.policy import GroupingPolicy
from grouping.domain.regroup import RegroupMemory
from grouping.queries import Counts
from grouping.repository import GroupingRepository
from grouping.service_layer import CycleReport, run_cycle
from servicekit.clock import Clock
from servicekit.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)
CYCLE_LOCK = "grouping.cycle"
"""Replicas share the tables: whoever holds this lock runs the cycle, the others skip it."""


@dataclass(frozen=True, slots=True)
class GroupingGauges:
    """What /metrics tells about groups and the compression they bring."""

    stores: Gauge
    groups: Gauge
    prices_held: Gauge
    prices_answerable: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> "GroupingGauges":
        """Create the gauges in a service's registry."""
        return cls(
            stores=Gauge("grouping_stores", "Stores known", registry=registry),
            groups=Gauge("grouping_groups", "Store groups", registry=registry),
            prices_held=Gauge("grouping_prices_held", "Price rows held after pruning", registry=registry),
            prices_answerable=Gauge(
                "grouping_prices_answerable",
                "Store prices answerable (what no pruning would hold)",
                registry=registry,
            ),
        )

    def show(self, counts: Counts) -> None:
        """Set the gauges to fresh counts."""
        self.stores.set(counts.stores)
        self.groups.set(counts.groups)
        self.prices_held.set(counts.prices_held)
        self.prices_answerable.set(counts.prices_answerable)


class GroupingWorker:
    """Runs grouping cycles until stopped; keeps in memory when each chain was regrouped."""

    name = "grouping-cycle"

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[GroupingRepository],
        counts: Callable[[], Awaitable[Counts]],
        gauges: GroupingGauges,
        policy: GroupingPolicy,
        every_s: float,
        clock: Clock,
        recount_every: timedelta = timedelta(seconds=30),
    ) -> None:
        self.uow = uow
        self.counts = counts
        self.gauges = gauges
        self.policy = policy
        self.every_s = every_s
        self.clock = clock
        self.memory = RegroupMemory()
        # Counting scans every held price (a quarter of a second at 1.2 M): a busy stream changes
        # groups each cycle, so the gauges are recounted at most this often, not after each change.
        self.recount_every = recount_every
        self.recounted_at: datetime | None = None
        self.recount_due = True

    async def run(self, stopping: asyncio.Event) -> None:
        """Cycle until stopping is set."""
        while not stopping.is_set():
            try:
                await self.tick()
            except Exception as exc:
                log.error("grouping cycle failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.every_s)

    async def tick(self) -> CycleReport:
        """Run one cycle unless another replica is running one; log a change, recount when due."""
        now = self.clock()
        async with self.uow() as work:
            if not await work.try_lock(CYCLE_LOCK):
                return CycleReport()
            report = await run_cycle(work, now=now, policy=self.policy, memory=self.memory)
        if report.changed():
            log.info("groups updated", **report.figures(), events=len(report.events))
            self.recount_due = True
        if self.recount_due and (self.recounted_at is None or now - self.recounted_at >= self.recount_every):
            self.gauges.show(await self.counts())
            self.recounted_at, self.recount_due = now, False
        return report
