"""Thin handlers of the scraper service: claim the event, call the service layer, done."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import RescrapeRequested, StoreGroupChanged
from scraper.repository import ScraperRepository
from scraper.service_layer.plan import apply_group_change, queue_rescrape
from servicekit.consuming import ConsumerGroup
from servicekit.unit_of_work import UnitOfWorkFactory


def build_router(*, uow: UnitOfWorkFactory[ScraperRepository], consumers: ConsumerGroup) -> KafkaRouter:
    """Subscribe the scraper to group changes and re-scrape requests."""
    router = KafkaRouter()

    @consumers.subscribe(router, topic("groups.changed.v1"))
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Keep the scrape plan current: anchors often, members as samples."""
        async with uow() as work:
            if await work.claim([event]):
                await apply_group_change(work, event.payload)

    @consumers.subscribe(router, topic("rescrapes.requested.v1"))
    async def on_rescrapes_requested(event: RescrapeRequested) -> None:
        """Queue a store for the next run, ahead of the routine plan."""
        async with uow() as work:
            if await work.claim([event]):
                await queue_rescrape(work, event.payload)

    return router
