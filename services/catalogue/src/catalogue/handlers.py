"""Thin handlers of the catalogue: claim the events, call the service layer, done."""

from faststream.kafka import KafkaRouter

from catalogue import service_layer
from catalogue.domain.answering import Shelf
from catalogue.repository import CatalogueRepository
from contracts import topic
from contracts.events import (
    BargainsChanged,
    PricesScraped,
    ProductObserved,
    StoreGroupChanged,
    SubstitutionsChanged,
)
from servicekit.consuming import ConsumerGroup
from servicekit.kept_reads import KeptReads
from servicekit.unit_of_work import UnitOfWorkFactory


def build_router(
    *,
    uow: UnitOfWorkFactory[CatalogueRepository],
    consumers: ConsumerGroup,
) -> KafkaRouter:
    """Subscribe the catalogue to prices, products, groups, substitutes and bargains."""
    router = KafkaRouter()
    anchor_shelves: KeptReads[Shelf] = KeptReads()  # this process's anchors' prices, kept between batches

    @consumers.subscribe_batch(router, topic("prices.scraped.v1"))
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        """Fold the batches' prices into current prices and history."""
        async with uow() as work:
            if fresh := await work.claim(events):
                await service_layer.fold_prices(
                    work, [event.payload for event in fresh], anchor_shelves=anchor_shelves
                )

    @consumers.subscribe_batch(router, topic("products.observed.v1"))
    async def on_products_observed(events: list[ProductObserved]) -> None:
        """Record the products' names, sizes, barcodes and categories."""
        async with uow() as work:
            if fresh := await work.claim(events):
                await service_layer.observe_products(work, [event.payload for event in fresh])

    @consumers.subscribe(router, topic("groups.changed.v1"))
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Let a group's anchor answer for its members."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.change_group(work, event.payload)

    @consumers.subscribe(router, topic("substitutions.changed.v1"))
    async def on_substitutions_changed(event: SubstitutionsChanged) -> None:
        """Replace the product's substitutes."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.change_substitutes(work, event.payload, occurred_at=event.occurred_at)

    @consumers.subscribe(router, topic("bargains.changed.v1"))
    async def on_bargains_changed(event: BargainsChanged) -> None:
        """Record the bargains that appeared, changed or expired."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.change_bargains(work, event.payload)

    return router
