"""Thin handlers of the grouping service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import PricesScraped
from grouping.repository import GroupingRepository
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import mark_processed


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe grouping to scraped prices."""
    router = KafkaRouter()

    @subscribe(router, topic("prices.scraped.v1"), group_id=group_id)
    async def on_prices_scraped(event: PricesScraped) -> None:
        """Fold a store's prices into the latest-price projection; mark members for a check."""
        prices = event.payload
        async with db.pool.acquire() as conn, conn.transaction():
            if not await mark_processed(conn, event):
                return
            repo = GroupingRepository(conn)
            await repo.upsert_prices(
                chain=prices.chain, store_id=prices.store_id, observations=prices.observations
            )
            await repo.note_store_prices(
                chain=prices.chain,
                store_id=prices.store_id,
                observed=len(prices.observations),
                observed_at=max(o.observed_at for o in prices.observations),
            )

    return router
