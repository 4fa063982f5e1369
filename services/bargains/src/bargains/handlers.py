"""Thin handlers of the bargains service: parse, act, record."""

from faststream.kafka import KafkaRouter

from bargains.recompute import Recomputer
from bargains.repository import BargainsRepository
from contracts import topic
from contracts.events import PricesScraped, ProductObserved, StoreGroupChanged, SubstitutionsChanged
from servicekit.consuming import subscribe, subscribe_batch
from servicekit.db import Database
from servicekit.idempotency import mark_processed, mark_processed_many
from servicekit.outbox import enqueue


def build_router(*, db: Database, group_id: str, recomputer: Recomputer, max_batch: int) -> KafkaRouter:
    """Subscribe bargains to prices, group changes and substitutions."""
    router = KafkaRouter()

    @subscribe_batch(router, topic("prices.scraped.v1"), group_id=group_id, max_records=max_batch)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        """Recompute the bargains of the products these batches priced."""
        async with db.pool.acquire() as conn, conn.transaction():
            batches = [event.payload for event in await mark_processed_many(conn, events)]
            if batches:
                await enqueue(conn, await recomputer.on_prices(BargainsRepository(conn), batches))

    @subscribe(router, topic("groups.changed.v1"), group_id=group_id)
    async def on_groups_changed(event: StoreGroupChanged) -> None:
        """Let an anchor's bargains answer for its members."""
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await enqueue(conn, await recomputer.on_group(BargainsRepository(conn), event.payload))

    @subscribe(router, topic("substitutions.changed.v1"), group_id=group_id)
    async def on_substitutions_changed(event: SubstitutionsChanged) -> None:
        """Update the product's cross-chain comparisons with its identical products elsewhere."""
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                await enqueue(conn, await recomputer.on_substitutes(BargainsRepository(conn), event.payload))

    @subscribe(router, topic("products.observed.v1"), group_id=group_id)
    async def on_products_observed(event: ProductObserved) -> None:
        """Remember the product's barcode: the same product at other chains shares it."""
        product = event.payload
        async with db.pool.acquire() as conn, conn.transaction():
            if await mark_processed(conn, event):
                repo = BargainsRepository(conn)
                await enqueue(
                    conn, await recomputer.on_product(repo, product.chain, product.sku, product.barcode)
                )

    return router
