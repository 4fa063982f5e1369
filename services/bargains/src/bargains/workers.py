"""Background loops of the bargains service."""

import asyncio

from bargains import service_layer
from bargains.domain.bargains import Policy
from bargains.repository import BargainsRepository
from servicekit.clock import Clock
from servicekit.service import repeat
from servicekit.unit_of_work import UnitOfWorkFactory


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
        await repeat("bargain expiry", self.expire_once, every_s=self.interval_s, stopping=stopping)

    async def expire_once(self) -> None:
        """Expire the bargains whose price went stale by now."""
        async with self.uow() as work:
            await service_layer.expire(work, now=self.clock(), policy=self.policy)
