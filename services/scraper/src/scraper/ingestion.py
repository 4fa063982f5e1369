"""Take observations from files and other scrapers: validate, quarantine, deduplicate, stage."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from contracts.events import PriceObservation
from scraper.domain.ingest import FUTURE_TOLERANCE, Accepted, validate_row
from scraper.repository import ProductRow, ScraperRepository
from scraper.staging import stage_prices
from scraper.telemetry import ScraperCounters
from servicekit.db import Database

Source = Literal["import", "ingest"]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a batch of rows."""

    accepted: int
    quarantined: int
    duplicates: int
    events: int

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready dict."""
        return asdict(self)


class Ingestor:
    """Validate raw rows and stage the good ones, all in one transaction per batch."""

    def __init__(self, *, db: Database, counters: ScraperCounters) -> None:
        self.db = db
        self.counters = counters

    async def ingest(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        default_chain: str | None,
        default_store: str | None,
        source: Source,
        observed_at: datetime | None = None,
    ) -> IngestResult:
        """Validate every row; quarantine the bad, skip the already seen, publish the rest.

        Rows without a timestamp take `observed_at`: a file sent in several batches gives
        one time to all of them, so its repeated rows are recognised as duplicates.
        """
        now = datetime.now(UTC)
        if observed_at is not None and observed_at - now > FUTURE_TOLERANCE:
            raise ValueError("observed_at is in the future")
        default_time = (observed_at or now).astimezone(UTC)
        verdicts = [
            validate_row(raw, default_chain=default_chain, default_store=default_store, now=default_time)
            for raw in rows
        ]
        rejected = [(v.reason, v.raw) for v in verdicts if not isinstance(v, Accepted)]
        unique: dict[tuple[str, str, str, datetime], Accepted] = {}
        for verdict in verdicts:
            if isinstance(verdict, Accepted):
                o = verdict.observation
                unique.setdefault((verdict.chain, verdict.store_id, o.sku, o.observed_at), verdict)
        duplicates = sum(isinstance(v, Accepted) for v in verdicts) - len(unique)

        events = 0
        async with self.db.pool.acquire() as conn, conn.transaction():
            repo = ScraperRepository(conn)
            fresh = await repo.record_ingested(
                rows=[(k[0], k[1], k[2], k[3], v.observation.price_cents) for k, v in unique.items()]
            )
            duplicates += len(unique) - len(fresh)
            by_store: dict[tuple[str, str], list[Accepted]] = defaultdict(list)
            for key in fresh:
                by_store[(key[0], key[1])].append(unique[key])
            for (chain, store_id), items in sorted(by_store.items()):
                observations: list[PriceObservation] = [i.observation for i in items]
                products = {
                    i.observation.sku: ProductRow(
                        i.observation.sku, p.name, p.brand, p.size, p.category, p.barcode, p.url
                    )
                    for i in items
                    if (p := i.product) is not None
                }
                events += await stage_prices(
                    repo,
                    chain=chain,
                    store_id=store_id,
                    source=source,
                    observations=observations,
                    products=list(products.values()),
                    observed_at=now,
                )
            await repo.quarantine(source=source, rejected=rejected)
        self.counters.quarantined.labels(source).inc(len(rejected))
        self.counters.observations.inc(len(fresh))
        return IngestResult(
            accepted=len(fresh), quarantined=len(rejected), duplicates=duplicates, events=events
        )
