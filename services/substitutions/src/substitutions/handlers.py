"""Thin handlers of the substitutions service: open a unit of work, claim, observe."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import ProductObserved
from contracts.events.v1 import ProductObservedPayload
from servicekit.clock import Clock
from servicekit.consuming import ConsumerGroup
from servicekit.unit_of_work import UnitOfWorkFactory
from substitutions.domain.catalogue import Description
from substitutions.repository import SubstitutionsRepository
from substitutions.service_layer import Matcher


def build_router(
    *,
    consumers: ConsumerGroup,
    uow: UnitOfWorkFactory[SubstitutionsRepository],
    matcher: Matcher,
    clock: Clock,
) -> KafkaRouter:
    """Subscribe substitutions to observed products.

    `uow` must be `matcher.unit_of_work`: the matcher's catalogue then follows its commits.
    """
    router = KafkaRouter()

    @consumers.subscribe(router, topic("products.observed.v1"))
    async def on_products_observed(event: ProductObserved) -> None:
        """Compute a new or changed product's substitutes and its neighbours' reverse links."""
        async with uow() as work:
            for fresh in await work.claim([event]):
                product = fresh.payload
                await matcher.observe(
                    work, description=_describe(product), observed_at=product.observed_at, now=clock()
                )

    return router


def _describe(payload: ProductObservedPayload) -> Description:
    """Take the description out of an observation."""
    return Description(
        chain=payload.chain,
        sku=payload.sku,
        name=payload.name,
        brand=payload.brand,
        size=payload.size,
        category=payload.category,
        barcode=payload.barcode,
        shared_category=payload.shared_category,
    )
