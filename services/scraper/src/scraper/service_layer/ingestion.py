"""Take observations from files and other scrapers: validate, quarantine, deduplicate, stage."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from scraper.domain.categories import CategoryMap
from scraper.domain.importers import RawRow
from scraper.domain.ingest import FUTURE_TOLERANCE, Accepted, ProductInfo, Rejected, validate_row
from scraper.repository import IngestedPrice, ProductRow, ScraperRepository
from scraper.service_layer.staging import stage_prices
from scraper.telemetry import ScraperCounters
from servicekit.unit_of_work import UnitOfWorkFactory, Work

IngestSource = Literal["import", "ingest"]


PROBLEMS_SHOWN = 20
"""Rejected rows a result names with their reason (all of them are quarantined, with theirs)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A rejected row: where it was in the batch (from 0) and why."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a batch of rows, and why the first rejected ones were."""

    accepted: int
    quarantined: int
    duplicates: int
    events: int
    problems: tuple[RowProblem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the counts and problems as a JSON-ready dict."""
        return asdict(self)


class Ingestor:
    """Validate raw rows and stage the good ones, all in one unit of work per batch."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[ScraperRepository],
        counters: ScraperCounters,
        categories: CategoryMap | None = None,
    ) -> None:
        self.uow = uow
        self.counters = counters
        self.categories = categories

    async def ingest(
        self,
        rows: Sequence[RawRow],
        *,
        default_chain: str | None,
        default_store: str | None,
        source: IngestSource,
        observed_at: datetime | None,
        now: datetime,
    ) -> IngestResult:
        """Validate every row; quarantine the bad, skip the already seen, publish the rest.

        Rows without a timestamp take `observed_at` (default: `now`): a file sent in several
        batches gives one time to all of them, so its repeated rows are recognised as duplicates.
        """
        if observed_at is not None and observed_at - now > FUTURE_TOLERANCE:
            raise ValueError("observed_at is in the future")
        default_time = (observed_at or now).astimezone(UTC)
        verdicts = [
            validate_row(raw, default_chain=default_chain, default_store=default_store, now=default_time)
            for raw in rows
        ]
        rejected_at = [(row, v) for row, v in enumerate(verdicts) if isinstance(v, Rejected)]
        rejected = [v for _, v in rejected_at]
        # The sender learns why, not only how many: it can mend its rows and send them again.
        problems = tuple(RowProblem(row, v.reason) for row, v in rejected_at[:PROBLEMS_SHOWN])
        unique: dict[IngestedPrice, Accepted] = {}
        for verdict in verdicts:
            if isinstance(verdict, Accepted):
                unique.setdefault(_price(verdict), verdict)
        duplicates = len(verdicts) - len(rejected) - len(unique)

        async with self.uow() as work:
            fresh = await work.repo.record_ingested(prices=list(unique))
            duplicates += len(unique) - len(fresh)
            by_store: dict[tuple[str, str], list[Accepted]] = defaultdict(list)
            for price, item in unique.items():  # in the rows' order
                if price in fresh:
                    by_store[(price.chain, price.store_id)].append(item)
            events = 0
            for (chain, store_id), items in sorted(by_store.items()):
                events += await _stage_store(
                    work, chain, store_id, items, source=source, now=now, categories=self.categories
                )
            await work.repo.quarantine(source=source, rejected=rejected)
        self.counters.quarantined.labels(source).inc(len(rejected))
        self.counters.observations.inc(len(fresh))
        return IngestResult(
            accepted=len(fresh),
            quarantined=len(rejected),
            duplicates=duplicates,
            events=events,
            problems=problems,
        )


async def _stage_store(
    work: Work[ScraperRepository],
    chain: str,
    store_id: str,
    items: list[Accepted],
    *,
    source: IngestSource,
    now: datetime,
    categories: CategoryMap | None,
) -> int:
    """Stage one store's fresh observations, describing each product they name once."""
    products = {
        item.observation.sku: _product_row(item.observation.sku, info)
        for item in items
        if (info := item.product) is not None
    }
    return await stage_prices(
        work,
        chain=chain,
        store_id=store_id,
        source=source,
        observations=[item.observation for item in items],
        products=list(products.values()),
        observed_at=now,
        categories=categories,
    )


def _price(accepted: Accepted) -> IngestedPrice:
    """Return what identifies an ingested observation (store, sku, time), with its price."""
    o = accepted.observation
    return IngestedPrice(
        chain=accepted.chain,
        store_id=accepted.store_id,
        sku=o.sku,
        observed_at=o.observed_at,
        price_cents=o.price_cents,
    )


def _product_row(sku: str, info: ProductInfo) -> ProductRow:
    """Describe the product a row names."""
    return ProductRow(
        sku=sku,
        name=info.name,
        brand=info.brand,
        size=info.size,
        category=info.category,
        barcode=info.barcode,
        url=info.url,
    )
