"""Background loops of the bargains service."""

import asyncio
import contextlib

import structlog

from bargains import service_layer
from bargains.domain.bargains import Policy
from bargains.repository import BargainsRepository
from servicekit.clock import Clock
from servicekit.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


class Expirer:
    """Expire bargains whose price went stale, now and then: none rests on an old price."""

    name = "bargain-expiry"

    def __init__(
        self, *, uow: UnitOfWorkFactory[BargainsRepository], clock: Clock, policy: Policy, interval_s: float
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.policy = policy
        self.interval_s = interval_s

    async def run(self, stopping: asyncio.Event) -> None:
        """Expire stale bargains every interval until stopping is set."""
        while not stopping.is_set():
            try:
                async with self.uow() as work:
                    await service_layer.expire(work, now=self.clock(), policy=self.policy)
            except Exception as exc:
                log.error("bargain expiry failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval_s)
