"""Thin handlers of the grouping service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import PricesScraped
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import note_received


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe grouping to scraped prices."""
    router = KafkaRouter()

    @subscribe(router, topic("prices.scraped.v1"), group_id=group_id)
    async def on_prices_scraped(event: PricesScraped) -> None:
        """Fold a store's prices into the projection that groups are found from."""
        await note_received(db, event)

    return router
