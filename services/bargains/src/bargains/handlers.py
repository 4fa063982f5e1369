"""Thin handlers of the bargains service: parse, act, record."""

from faststream.kafka import KafkaRouter

from bargains.recompute import Recomputer
from bargains.repository import BargainsRepository
from contracts import topic
from contracts.events import PricesScraped, StoreGroupChanged, SubstitutionsChanged
from servicekit.consuming import subscribe
from servicekit.db import Database
from servicekit.idempotency import mark_processed, note_received
from servicekit.outbox import enqueue


def build_router(*, db: Database, group_id: str, recomputer: Recomputer) -> KafkaRouter:
    """Subscribe bargains to prices, group changes and substitutions."""
    router = KafkaRouter()

    @subscribe(router, topic("prices.scraped.v1"), group_id=group_id)
    async def on_prices_scraped(event: PricesScraped) -> None:
        """Recompute the bargains of the products this batch priced."""
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await enqueue(conn, await recomputer.on_prices(BargainsRepository(conn), event.payload))

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Let an anchor's bargains answer for its members."""
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await enqueue(conn, await recomputer.on_group(BargainsRepository(conn), event.payload))

    @subscribe(router, topic("substitutions.changed.v1"), group_id=group_id)
    async def on_substitutions_changed(event: SubstitutionsChanged) -> None:
        """Record substitutes; cross-chain comparisons build on them."""
        await note_received(db, event)

    return router
