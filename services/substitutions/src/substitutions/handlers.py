"""Thin handlers of the substitutions service: parse, act, record."""

from faststream.kafka import KafkaRouter

from contracts import topic
from contracts.events import ProductObserved
from servicekit.consuming import subscribe
from servicekit.idempotency import mark_processed
from substitutions.matcher import Matcher
from substitutions.repository import describe


def build_router(*, group_id: str, matcher: Matcher) -> KafkaRouter:
    """Subscribe substitutions to observed products."""
    router = KafkaRouter()

    @subscribe(router, topic("products.observed.v1"), group_id=group_id)
    async def on_products_observed(event: ProductObserved) -> None:
        """Compute a new or changed product's substitutes and its neighbours' reverse links."""
        product = event.payload
        async with matcher.transaction() as conn:
            if await mark_processed(conn, event):
                await matcher.observe(conn, description=describe(product), observed_at=product.observed_at)

    return router
