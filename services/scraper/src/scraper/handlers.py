"""Thin handlers of the scraper service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import RescrapeRequested, StoreGroupChanged
from scraper.repository import ScraperRepository
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import mark_processed


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe the scraper to group changes and re-scrape requests."""
    router = KafkaRouter()

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Keep the scrape plan current: anchors often, members as samples."""
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await ScraperRepository(conn).apply_group(group=event.payload)

    @subscribe(router, topic("rescrapes.requested.v1"), group_id=group_id)
    async def on_rescrapes_requested(event: RescrapeRequested) -> None:
        """Queue a store for the next run, ahead of the routine plan."""
        request = event.payload
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await ScraperRepository(conn).request_rescrape(
                    chain=request.chain, store_id=request.store_id, reason=request.reason
                )

    return router
