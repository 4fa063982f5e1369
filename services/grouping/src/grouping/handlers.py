"""Thin handlers of the grouping service: claim the events, fold their prices in."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import PricesScraped
from grouping import service_layer
from grouping.domain.policy import GroupingPolicy
from grouping.repository import GroupingRepository
from servicekit.clock import Clock
from servicekit.consuming import ConsumerGroup
from servicekit.unit_of_work import UnitOfWorkFactory


def build_router(
    *,
    uow: UnitOfWorkFactory[GroupingRepository],
    clock: Clock,
    consumers: ConsumerGroup,
    policy: GroupingPolicy,
) -> KafkaRouter:
    """Subscribe grouping to scraped prices."""
    router = KafkaRouter()

    @consumers.subscribe_batch(router, topic("prices.scraped.v1"))
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        """Fold stores' prices into the latest-price projection; mark members for a check."""
        async with uow() as work:
            fresh = await work.claim(events)
            # A batch is attributed to its first event's cause, as the unit of work does.
            cause = fresh[0].correlation_id if fresh else None
            await service_layer.fold_prices(
                work, [event.payload for event in fresh], now=clock(), policy=policy, correlation_id=cause
            )

    return router
