"""In-memory fakes of the scraper's repository and of a storefront, for the unit tier."""

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from contracts.events.v1 import StoreGroupChangedPayload
from scraper.domain.importers import RawRow
from scraper.domain.ingest import Rejected
from scraper.domain.planning import Category, Role, StoreInfo, StoreRef, StoreState, Task
from scraper.fetching import FetchError
from scraper.repository import (
    IngestedPrice,
    ProductChange,
    ProductRow,
    Run,
    RunStatus,
    Source,
)

# The order PostgresScraperRepository.pending_tasks fetches pages in: anchors before members.
_REASON_RANK = {"rescrape": 0, "anchor": 1, "discover": 2, "full": 2}


@dataclass
class StoreRecord:
    """A row of `stores`."""

    name: str
    state: str | None = None
    postcode: str | None = None
    role: Role = "unknown"
    group_id: str | None = None
    group_version: int | None = None
    last_scraped_at: datetime | None = None


@dataclass
class RunRecord:
    """A row of `scrape_runs`."""

    run: Run
    status: RunStatus = "running"
    error: str | None = None
    finished_at: datetime | None = None


@dataclass
class TaskRecord:
    """A row of `scrape_tasks`."""

    task: Task
    done: bool = False
    observations: int | None = None


@dataclass(frozen=True)
class QuarantinedRow:
    """A row of `quarantine`."""

    source: Source
    reason: str
    raw: RawRow
    # The database's clock, as the table's default: not part of what a test compares.
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)


class InMemoryScraperRepository:
    """ScraperRepository over dicts, with the semantics of PostgresScraperRepository's SQL."""

    def __init__(self) -> None:
        self.stores: dict[StoreRef, StoreRecord] = {}
        self.rescrapes: dict[StoreRef, str] = {}
        self.runs: dict[str, RunRecord] = {}  # in the order started
        self.tasks: dict[Task, TaskRecord] = {}
        self.products: dict[tuple[str, str], ProductRow] = {}
        self.ingested: set[IngestedPrice] = set()
        self.quarantined: list[QuarantinedRow] = []

    # --- store directory and groups ---------------------------------------------------

    async def upsert_stores(self, *, chain: str, stores: Sequence[StoreInfo]) -> None:
        """Add new stores of a chain and refresh names and addresses of known ones."""
        for info in stores:
            ref = StoreRef(chain, info.store_id)
            record = self.stores.setdefault(ref, StoreRecord(name=info.name))
            record.name, record.state, record.postcode = info.name, info.state, info.postcode

    async def store_states(self, *, chains: Sequence[str]) -> list[StoreState]:
        """Return the planner's view of every store of the chains, by chain and store id."""
        return [
            StoreState(ref.chain, ref.store_id, record.role, record.group_id, record.last_scraped_at)
            for ref, record in sorted(self.stores.items(), key=lambda item: (item[0].chain, item[0].store_id))
            if ref.chain in chains
        ]

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> bool:
        """Record a group's membership unless a newer version was applied; return whether applied."""
        in_group = [
            record
            for ref, record in self.stores.items()
            if ref.chain == group.chain and record.group_id == group.group_id
        ]
        versions = [r.group_version for r in in_group if r.group_version is not None]
        if versions and max(versions) >= group.group_version:
            return False
        members = list(group.member_store_ids)
        keep = {group.anchor_store_id, *members} if group.reason != "dissolved" else set()
        for ref, record in self.stores.items():
            if ref.chain == group.chain and record.group_id == group.group_id and ref.store_id not in keep:
                record.role, record.group_id, record.group_version = "unknown", None, None
        if group.reason == "dissolved":
            return True
        roles: list[tuple[str, Role]] = [(group.anchor_store_id, "anchor"), *((m, "member") for m in members)]
        for store_id, role in roles:
            record = self.stores.setdefault(StoreRef(group.chain, store_id), StoreRecord(name=store_id))
            record.role, record.group_id, record.group_version = role, group.group_id, group.group_version
        return True

    # --- re-scrape requests -------------------------------------------------------------

    async def request_rescrape(self, *, store: StoreRef, reason: str) -> None:
        """Queue a store for the next run; a repeated request keeps the first."""
        self.rescrapes.setdefault(store, reason)

    async def pending_rescrapes(self) -> set[StoreRef]:
        """Return the stores waiting for a re-scrape."""
        return set(self.rescrapes)

    async def clear_rescrapes(self, *, stores: Iterable[StoreRef]) -> None:
        """Drop requests a run has taken on."""
        for ref in stores:
            self.rescrapes.pop(ref, None)

    # --- runs and tasks -------------------------------------------------------------------

    async def create_run(self, *, run: Run, tasks: Sequence[Task]) -> None:
        """Record a run and every page it has to fetch (a run id or a page twice is an error)."""
        if run.run_id in self.runs or len(set(tasks)) != len(tasks) or any(t in self.tasks for t in tasks):
            raise ValueError("duplicate key value violates a primary key")
        self.runs[run.run_id] = RunRecord(run)
        self.tasks.update((task, TaskRecord(task)) for task in tasks)

    async def unfinished_runs(self) -> list[str]:
        """Return runs a previous process started and did not finish, oldest first."""
        return [run_id for run_id, record in self.runs.items() if record.status == "running"]

    async def get_run(self, *, run_id: str) -> Run | None:
        """Return a run, or None when there is no such run."""
        record = self.runs.get(run_id)
        return record.run if record is not None else None

    async def pending_tasks(self, *, run_id: str) -> list[Task]:
        """Return the pages of a run not fetched yet: re-scrapes, anchors, then the rest."""
        pending = [t for t, record in self.tasks.items() if t.run_id == run_id and not record.done]
        return sorted(
            pending,
            key=lambda t: (_REASON_RANK.get(t.reason, 3), t.chain, t.store_id, t.category, t.page),
        )

    async def complete_task(self, *, task: Task, observations: int, scraped_at: datetime) -> None:
        """Mark a page done and its store as scraped at `scraped_at` (never moved back)."""
        record = self.tasks.get(task)
        if record is not None:
            record.done, record.observations = True, observations
        store = self.stores.get(StoreRef(task.chain, task.store_id))
        if store is not None:
            last = store.last_scraped_at
            store.last_scraped_at = scraped_at if last is None else max(last, scraped_at)

    async def finish_run(self, *, run_id: str, status: RunStatus, error: str | None) -> None:
        """Close a run as finished or failed."""
        record = self.runs.get(run_id)
        if record is not None:
            record.status, record.error, record.finished_at = status, error, datetime.now(UTC)

    # --- products ---------------------------------------------------------------------

    async def known_barcodes(self, *, chain: str, skus: Sequence[str]) -> dict[str, str]:
        """Return the barcodes already known for these products, by sku."""
        known = (self.products.get((chain, sku)) for sku in skus)
        return {p.sku: p.barcode for p in known if p is not None and p.barcode is not None}

    async def upsert_products(self, *, chain: str, products: Sequence[ProductRow]) -> list[ProductChange]:
        """Store product descriptions; return those that are new or changed, as stored now."""
        if len({p.sku for p in products}) != len(products):
            raise ValueError("ON CONFLICT DO UPDATE command cannot affect row a second time")
        changes = []
        for product in products:
            old = self.products.get((chain, product.sku))
            if old is None:
                self.products[(chain, product.sku)] = product
                changes.append(ProductChange(product, "new"))
                continue
            barcode = product.barcode if product.barcode is not None else old.barcode
            # A row without a category keeps the shared category known, as the SQL does.
            shared = product.shared_category if product.category is not None else old.shared_category
            if (old.name, old.brand, old.size, old.barcode, old.shared_category) == (
                product.name,
                product.brand,
                product.size,
                barcode,
                shared,
            ):
                continue  # nothing that counts changed: the row is left as it was, category and url too
            stored = replace(
                product,
                category=product.category if product.category is not None else old.category,
                barcode=barcode,
                url=product.url if product.url is not None else old.url,
                shared_category=shared,
            )
            self.products[(chain, product.sku)] = stored
            changes.append(ProductChange(stored, "changed"))
        return changes

    # --- ingest -----------------------------------------------------------------------

    async def record_ingested(self, *, prices: Sequence[IngestedPrice]) -> set[IngestedPrice]:
        """Remember ingested observations; return those not seen before (same store, sku and time)."""
        fresh = set()
        for price in prices:
            if price not in self.ingested:
                self.ingested.add(price)
                fresh.add(price)
        return fresh

    async def quarantine(self, *, source: Source, rejected: Sequence[Rejected]) -> None:
        """Keep rejected rows with their reason."""
        self.quarantined.extend(QuarantinedRow(source, r.reason, r.raw) for r in rejected)

    async def forget_old(self, *, runs_before: datetime, quarantine_before: datetime) -> tuple[int, int]:
        """Delete runs that ended before a time (their pages with them) and older quarantined rows."""
        gone = {
            run_id
            for run_id, r in self.runs.items()
            if r.status != "running" and r.finished_at is not None and r.finished_at < runs_before
        }
        self.runs = {run_id: r for run_id, r in self.runs.items() if run_id not in gone}
        self.tasks = {task: t for task, t in self.tasks.items() if task.run_id not in gone}
        kept = [row for row in self.quarantined if row.received_at >= quarantine_before]
        forgotten = len(self.quarantined) - len(kept)
        self.quarantined = kept
        return len(gone), forgotten

    # --- for tests ----------------------------------------------------------------------

    def run_status(self, run_id: str) -> RunStatus:
        """Return a run's status."""
        return self.runs[run_id].status

    def tasks_of(self, run_id: str) -> list[TaskRecord]:
        """Return a run's pages with their progress."""
        return [record for task, record in self.tasks.items() if task.run_id == run_id]


PageKey = tuple[str, str, str, int]
"""A page of a shop: chain, store id, category, page number."""


class FakeShop:
    """A storefront in memory: stores, categories, listings and barcodes, with a log of requests.

    Listings are the same every day. Pages in `fail_pages` answer with a FetchError (a shop
    that keeps failing); `on_page` is called as each page is fetched.
    """

    def __init__(
        self,
        *,
        directory: dict[str, list[StoreInfo]],
        categories: dict[str, list[Category]],
        listings: dict[PageKey, list[RawRow]] | None = None,
        barcodes: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.directory = directory
        self.category_pages = categories
        self.listings = listings or {}
        self.barcodes = barcodes or {}
        self.fail_pages: set[PageKey] = set()
        self.on_page: Callable[[PageKey], None] = lambda key: None
        self.page_fetches: Counter[PageKey] = Counter()
        self.barcode_fetches: Counter[tuple[str, str]] = Counter()
        self.days: list[int | None] = []

    async def chains(self) -> list[str]:
        """Return the chains the storefront sells for."""
        return list(self.directory)

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return a chain's stores (a FetchError for a chain it does not sell for, as a 404)."""
        if chain not in self.directory:
            raise FetchError(f"GET /v1/chains/{chain}/stores answered 404")
        return self.directory[chain]

    async def categories(self, chain: str) -> list[Category]:
        """Return a chain's categories with their page counts."""
        return self.category_pages.get(chain, [])

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return one page's listings; count the fetch."""
        key = (chain, store_id, category, page)
        self.page_fetches[key] += 1
        self.days.append(day)
        self.on_page(key)
        await asyncio.sleep(0)  # let other workers run, as a real request would
        if key in self.fail_pages:
            raise FetchError(f"GET {'/'.join(map(str, key))} failed 8 times (last: 503)")
        return [dict(listing) for listing in self.listings.get(key, [])]

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return a product's barcode; count the fetch."""
        self.barcode_fetches[(chain, sku)] += 1
        await asyncio.sleep(0.001)  # long enough for other pages to ask for the same product
        return self.barcodes.get((chain, sku))
