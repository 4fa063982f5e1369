"""Thin handlers of the substitutions service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import ProductObserved
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import note_received


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe substitutions to observed products."""
    router = KafkaRouter()

    @subscribe(router, topic("products.observed.v1"), group_id=group_id)
    async def on_products_observed(event: ProductObserved) -> None:
        """Compute a new or changed product's substitutes."""
        await note_received(db, event)

    return router
