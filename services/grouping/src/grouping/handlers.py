"""Thin handlers of the grouping service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import PricesScraped
from grouping.repository import GroupingRepository
from servicekit.consuming import subscribe_batch
from servicekit.db import Database
from servicekit.idempotency import mark_processed_many


def build_router(*, db: Database, group_id: str, max_batch: int) -> KafkaRouter:
    """Subscribe grouping to scraped prices."""
    router = KafkaRouter()

    @subscribe_batch(router, topic("prices.scraped.v1"), group_id=group_id, max_records=max_batch)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        """Fold stores' prices into the latest-price projection; mark members for a check."""
        async with db.pool.acquire() as conn, conn.transaction():
            batches = [event.payload for event in await mark_processed_many(conn, events)]
            if batches:
                repo = GroupingRepository(conn)
                await repo.upsert_prices(batches=batches)
                await repo.note_store_prices(batches=batches)

    return router
