"""Thin handlers of the bargains service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import PricesScraped, StoreGroupChanged, SubstitutionsChanged
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import note_received


def build_router(*, db: Database, group_id: str) -> KafkaRouter:
    """Subscribe bargains to prices, group changes and substitutions."""
    router = KafkaRouter()

    @subscribe(router, topic("prices.scraped.v1"), group_id=group_id)
    async def on_prices_scraped(event: PricesScraped) -> None:
        """Recompute the bargains of the products this batch priced."""
        await note_received(db, event)

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Expand or move an anchor's bargains to its members."""
        await note_received(db, event)

    @subscribe(router, topic("substitutions.changed.v1"), group_id=group_id)
    async def on_substitutions_changed(event: SubstitutionsChanged) -> None:
        """Update cross-chain comparisons of the product."""
        await note_received(db, event)

    return router
