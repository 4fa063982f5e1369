"""Thin handlers of the scraper service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import RescrapeRequested, StoreGroupChanged
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import note_received


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe the scraper to group changes and re-scrape requests."""
    router = KafkaRouter()

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Keep the scrape plan current: anchors often, members as samples."""
        await note_received(db, event)

    @subscribe(router, topic("rescrapes.requested.v1"), group_id=group_id)
    async def on_rescrapes_requested(event: RescrapeRequested) -> None:
        """Put a stale store at the front of the scrape plan."""
        await note_received(db, event)

    return router
