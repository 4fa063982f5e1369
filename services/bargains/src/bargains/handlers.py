"""Thin handlers of the bargains service: claim the events, call the service layer, done."""

from faststream.kafka import KafkaRouter

from bargains import service_layer
from bargains.domain.answering import Run
from bargains.domain.bargains import Policy
from bargains.repository import BargainsRepository
from contracts import topic
from contracts.events import PricesScraped, ProductObserved, StoreGroupChanged, SubstitutionsChanged
from servicekit.clock import Clock
from servicekit.consuming import ConsumerGroup
from servicekit.kept_reads import KeptReads
from servicekit.unit_of_work import UnitOfWorkFactory


def build_router(
    *,
    uow: UnitOfWorkFactory[BargainsRepository],
    clock: Clock,
    policy: Policy,
    consumers: ConsumerGroup,
    fast_price_polling: bool = True,
) -> KafkaRouter:
    """Subscribe bargains to prices, group changes, substitutions and products."""
    router = KafkaRouter()
    anchor_runs: KeptReads[Run] = KeptReads()  # this process's anchors' runs, kept between batches

    # A price's bargain is announced from here: the one hop whose polling delay a shopper sees.
    @consumers.subscribe_batch(router, topic("prices.scraped.v1"), latency_critical=fast_price_polling)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        """Reassess the bargains of the products these batches priced."""
        async with uow() as work:
            if fresh := await work.claim(events):
                batches = [event.payload for event in fresh]
                await service_layer.fold_prices(
                    work, batches, now=clock(), policy=policy, anchor_runs=anchor_runs
                )

    @consumers.subscribe(router, topic("groups.changed.v1"))
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Let an anchor's bargains answer for its members."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.change_group(work, event.payload, now=clock(), policy=policy)

    @consumers.subscribe(router, topic("substitutions.changed.v1"))
    async def on_substitutions_changed(event: SubstitutionsChanged) -> None:
        """Update the product's cross-chain comparisons with its identical products elsewhere."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.change_substitutes(work, event.payload, now=clock(), policy=policy)

    @consumers.subscribe(router, topic("products.observed.v1"))
    async def on_products_observed(event: ProductObserved) -> None:
        """Remember the product's barcode: the same product at other chains shares it."""
        async with uow() as work:
            if await work.claim([event]):
                await service_layer.observe_product(work, event.payload, now=clock(), policy=policy)

    return router
