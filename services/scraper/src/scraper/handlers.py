"""Thin handlers of the scraper service: claim the event, call the service layer, done."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import RescrapeRequested, StoreGroupChanged
from scraper.repository import ScraperRepository
from scraper.service_layer.plan import apply_group_change, queue_rescrape
from servicekit.consuming import subscribe
from servicekit.unit_of_work import UnitOfWorkFactory


def build_router(
    *, uow: UnitOfWorkFactory[ScraperRepository], group_id: str, session_timeout_ms: int | None = None
) -> KafkaRouter:
    """Subscribe the scraper to group changes and re-scrape requests."""
    router = KafkaRouter()

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id, session_timeout_ms=session_timeout_ms)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Keep the scrape plan current: anchors often, members as samples."""
        async with uow() as work:
            if await work.claim([event]):
                await apply_group_change(work, event.payload)

    @subscribe(
        router, topic("rescrapes.requested.v1"), group_id=group_id, session_timeout_ms=session_timeout_ms
    )
    async def on_rescrapes_requested(event: RescrapeRequested) -> None:
        """Queue a store for the next run, ahead of the routine plan."""
        async with uow() as work:
            if await work.claim([event]):
                await queue_rescrape(work, event.payload)

    return router
