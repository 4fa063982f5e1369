"""Turn validated observations into outgoing events, inside the caller's unit of work."""

from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime

from pydantic import ValidationError

from contracts import Event
from contracts.events import PriceColumns, PriceObservation, PricesScraped, ProductObserved
from contracts.events.v1 import MAX_OBSERVATIONS, PageRef, PricesScrapedPayload, ProductObservedPayload
from scraper.domain.categories import CategoryMap
from scraper.domain.ingest import Rejected
from scraper.repository import ProductRow, ScraperRepository, Source
from servicekit.tracing import correlation_for
from servicekit.unit_of_work import Work

PRODUCER = "scraper"


async def stage_prices(
    work: Work[ScraperRepository],
    *,
    chain: str,
    store_id: str,
    source: Source,
    observations: Sequence[PriceObservation],
    products: Sequence[ProductRow],
    observed_at: datetime,
    run_id: str | None = None,
    page: PageRef | None = None,
    categories: CategoryMap | None = None,
) -> int:
    """Stage PricesScraped for the observations and ProductObserved for new or changed products.

    Returns the number of events staged. A product description the contract refuses is
    quarantined; its price still goes out. `categories` stamps each product's shared category.
    """
    if run_id is not None:
        # A run's prices and products share its correlation id: `pricestream trace RUN_ID` follows them.
        work.correlate(correlation_for(run_id))
    events: list[Event] = []
    rejected: list[Rejected] = []
    if categories is not None:
        products = [replace(p, shared_category=categories.shared(chain, p.category)) for p in products]
    for changed in await work.repo.upsert_products(chain=chain, products=products):
        described = {"chain": chain, **_present(changed.product)}
        try:
            payload = ProductObservedPayload.model_validate(
                {**described, "change": changed.change, "observed_at": observed_at}
            )
        except ValidationError as exc:
            reason = "product description off contract: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:3]
            )
            rejected.append(Rejected(reason, described))
            continue
        events.append(ProductObserved.new(producer=PRODUCER, payload=payload))
    for start in range(0, len(observations), MAX_OBSERVATIONS):
        prices = PricesScrapedPayload(
            chain=chain,
            store_id=store_id,
            source=source,
            run_id=run_id,
            page=page,
            prices=PriceColumns.of(observations[start : start + MAX_OBSERVATIONS]),
        )
        events.append(PricesScraped.new(producer=PRODUCER, payload=prices))
    await work.repo.quarantine(source=source, rejected=rejected)
    work.publish(events)
    return len(events)


def _present(product: ProductRow) -> dict[str, object]:
    """Return the product's fields that have a value (absent ones stay absent in the event)."""
    return {name: value for name, value in asdict(product).items() if value is not None}
