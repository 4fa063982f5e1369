"""Turn validated observations into outbox events, in the caller's transaction."""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from pydantic import ValidationError

from contracts import Event
from contracts.events import PriceObservation, PricesScraped, ProductObserved
from contracts.events.v1 import MAX_OBSERVATIONS, PageRef, PricesScrapedPayload, ProductObservedPayload
from scraper.repository import ProductRow, ScraperRepository
from servicekit.outbox import enqueue

PRODUCER = "scraper"


async def stage_prices(
    repo: ScraperRepository,
    *,
    chain: str,
    store_id: str,
    source: str,
    observations: Sequence[PriceObservation],
    products: Sequence[ProductRow],
    observed_at: datetime,
    run_id: str | None = None,
    page: PageRef | None = None,
) -> int:
    """Stage PricesScraped for the observations and ProductObserved for new or changed products.

    Returns the number of events staged. A product description the contract refuses is
    quarantined; its price still goes out.
    """
    events: list[Event] = []
    rejected: list[tuple[str, dict[str, object]]] = []
    for product, change in await repo.upsert_products(chain=chain, products=products):
        try:
            payload = ProductObservedPayload.model_validate(
                {"chain": chain, "change": change, "observed_at": observed_at, **_present(product)}
            )
        except ValidationError as exc:
            reason = "product description off contract: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:3]
            )
            rejected.append((reason, {"chain": chain, **_present(product)}))
            continue
        events.append(ProductObserved.new(producer=PRODUCER, payload=payload))
    for start in range(0, len(observations), MAX_OBSERVATIONS):
        payload_prices = PricesScrapedPayload(
            chain=chain,
            store_id=store_id,
            source=source,  # type: ignore[arg-type]
            run_id=run_id,
            page=page,
            observations=tuple(observations[start : start + MAX_OBSERVATIONS]),
        )
        events.append(PricesScraped.new(producer=PRODUCER, payload=payload_prices))
    await repo.quarantine(source=source, rejected=rejected)
    return await enqueue(repo.conn, events)


def _present(product: ProductRow) -> dict[str, object]:
    """Return the product's fields that have a value (absent ones stay absent in the event)."""
    return {name: value for name, value in asdict(product).items() if value is not None}
