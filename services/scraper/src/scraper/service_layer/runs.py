"""Scrape runs: plan the stores and record every page, fetch a page, stage it, close the run."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

import structlog

from contracts.events.v1 import PageRef
from scraper.chains.base import Shop
from scraper.domain.categories import CategoryMap
from scraper.domain.importers import RawRow
from scraper.domain.ingest import Accepted, Rejected, validate_row
from scraper.domain.planning import (
    PlanPolicy,
    Scope,
    StoreRef,
    Task,
    plan_stores,
    run_tasks,
)
from scraper.repository import ProductRow, Run, RunStatus, ScraperRepository
from scraper.service_layer.staging import stage_prices
from scraper.telemetry import ScraperCounters
from servicekit.unit_of_work import UnitOfWorkFactory, Work

log = structlog.get_logger(__name__)


class UnknownChainError(ValueError):
    """A run named a chain the shop does not have."""


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A run and the pages it still has to fetch, in the order to fetch them."""

    run: Run
    tasks: list[Task]


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A page's listings as the shop answered, not staged yet."""

    run: Run
    task: Task
    listings: list[RawRow]


class ScrapeRuns:
    """The run use cases; holds the barcodes fetched so far, for the process's life."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[ScraperRepository],
        shop: Shop,
        policy: PlanPolicy,
        counters: ScraperCounters,
        categories: CategoryMap | None = None,
    ) -> None:
        self.uow = uow
        self.shop = shop
        self.policy = policy
        self.counters = counters
        self.categories = categories
        self._barcodes: dict[tuple[str, str], asyncio.Task[str | None]] = {}

    async def plan_run(
        self,
        *,
        scope: Scope,
        day: int | None,
        chains: Sequence[str],
        as_of: datetime | None,
        now: datetime,
    ) -> str:
        """Sync the store directory, plan the stores, record the run's pages; return its id.

        `as_of` makes the run stand for a past moment: it plans for then and its prices are
        observed then (replaying a simulated day); by default each page is observed when fetched.
        """
        requested = list(chains)
        known = await self.shop.chains()
        if unknown := [chain for chain in requested if chain not in known]:
            raise UnknownChainError(
                f"no chain {', '.join(map(repr, unknown))} at the shop; its chains: {', '.join(known)}"
            )
        chains = requested or known
        directories = {chain: await self.shop.stores(chain) for chain in chains}
        categories = {chain: await self.shop.categories(chain) for chain in chains}
        run = Run(run_id=f"run-{now:%Y%m%dT%H%M%S}-{uuid4().hex[:6]}", scope=scope, day=day, as_of=as_of)
        async with self.uow() as work:
            for chain, stores in directories.items():
                await work.repo.upsert_stores(chain=chain, stores=stores)
            listed = {StoreRef(chain, s.store_id) for chain, stores in directories.items() for s in stores}
            rescrape = await _fetchable_rescrapes(
                work, listed, chains=set(directories), named=bool(requested)
            )
            states = [
                state
                for state in await work.repo.store_states(chains=chains)
                if StoreRef(state.chain, state.store_id) in listed
            ]
            planned = plan_stores(
                states, rescrape=rescrape, now=as_of or now, policy=self.policy, scope=scope
            )
            tasks = run_tasks(run.run_id, planned, categories)
            await work.repo.create_run(run=run, tasks=tasks)
            taken = [StoreRef(s.chain, s.store_id) for s in planned if s.reason == "rescrape"]
            await work.repo.clear_rescrapes(stores=taken)
        log.info(
            "scrape run planned",
            run_id=run.run_id,
            scope=scope,
            day=day,
            stores=len(planned),
            pages=len(tasks),
        )
        return run.run_id

    async def unfinished_runs(self) -> list[str]:
        """Return the runs a previous process left unfinished, oldest first."""
        async with self.uow() as work:
            return await work.repo.unfinished_runs()

    async def has_rescrapes(self) -> bool:
        """Tell whether stores wait for a re-scrape."""
        async with self.uow() as work:
            return bool(await work.repo.pending_rescrapes())

    async def pending(self, run_id: str) -> PendingRun | None:
        """Return a run with the pages it has not fetched yet; None when there is no such run."""
        async with self.uow() as work:
            run = await work.repo.get_run(run_id=run_id)
            tasks = await work.repo.pending_tasks(run_id=run_id)
        return PendingRun(run, tasks) if run is not None else None

    async def fetch_page(self, run: Run, task: Task) -> FetchedPage:
        """Fetch a page of the run from the shop (FetchError when the shop keeps failing)."""
        listings = await self.shop.page(task.chain, task.store_id, task.category, task.page, run.day)
        return FetchedPage(run, task, listings)

    async def stage_page(self, page: FetchedPage, *, now: datetime) -> None:
        """Stage a fetched page's events, quarantine its bad rows and mark it done, in one transaction.

        The page is observed at `now`, unless its run stands for a past moment.
        """
        task = page.task
        observed_at = page.run.as_of or now
        verdicts = [
            validate_row(
                _listing_row(listing, task.category),
                default_chain=task.chain,
                default_store=task.store_id,
                now=observed_at,
            )
            for listing in page.listings
        ]
        accepted = [v for v in verdicts if isinstance(v, Accepted)]
        rejected = [v for v in verdicts if isinstance(v, Rejected)]
        products = await self._with_barcodes(task.chain, accepted)
        async with self.uow() as work:
            await stage_prices(
                work,
                chain=task.chain,
                store_id=task.store_id,
                source="scrape",
                observations=[a.observation for a in accepted],
                products=products,
                observed_at=observed_at,
                run_id=task.run_id,
                page=PageRef(category=task.category, page=task.page),
                categories=self.categories,
            )
            await work.repo.quarantine(source="scrape", rejected=rejected)
            await work.repo.complete_task(task=task, observations=len(accepted), scraped_at=observed_at)
        self.counters.pages.inc()
        self.counters.observations.inc(len(accepted))

    async def finish_run(self, run_id: str, failures: Sequence[str]) -> RunStatus:
        """Close a run: failed when some pages failed for good (a later resume retries them)."""
        status: RunStatus = "failed" if failures else "finished"
        error = f"{len(failures)} pages failed; last: {failures[-1]}" if failures else None
        async with self.uow() as work:
            await work.repo.finish_run(run_id=run_id, status=status, error=error)
        return status

    async def _with_barcodes(self, chain: str, accepted: list[Accepted]) -> list[ProductRow]:
        """Describe the page's products, fetching a barcode only for products never seen."""
        async with self.uow() as work:
            known = await work.repo.known_barcodes(chain=chain, skus=[a.observation.sku for a in accepted])
        rows = []
        for item in accepted:
            info = item.product
            if info is None:
                continue
            sku = item.observation.sku
            barcode = known.get(sku) or info.barcode or await self._barcode(chain, sku)
            rows.append(
                ProductRow(
                    sku=sku,
                    name=info.name,
                    brand=info.brand,
                    size=info.size,
                    category=info.category,
                    barcode=barcode,
                    url=info.url,
                )
            )
        return rows

    async def _barcode(self, chain: str, sku: str) -> str | None:
        """Fetch a product's barcode once, even when many pages ask for it at the same time."""
        key = (chain, sku)
        fetch = self._barcodes.get(key)
        if fetch is None or (fetch.done() and (fetch.cancelled() or fetch.exception() is not None)):
            # Remembered for the process's life; a failed fetch is tried again next time.
            fetch = self._barcodes[key] = asyncio.create_task(self.shop.barcode(chain, sku))
        return await asyncio.shield(fetch)


# What a listing may carry beyond its price: the shelf label's offers, and an adapter's reason
# (`_error`) for a tile it could not read.
_LISTING_KEYS = (
    "sku",
    "name",
    "brand",
    "size",
    "barcode",
    "url",
    "price",
    "was_price",
    "unit_price",
    "multibuy",
    "member_price",
    "sold_by",
    "_error",
)


def _listing_row(listing: dict[str, Any], category: str) -> RawRow:
    """Map a listing (the storefront's, or an adapter's row) to the importers' raw row shape."""
    row: RawRow = {key: listing[key] for key in _LISTING_KEYS if listing.get(key) is not None}
    return {**row, "category": category, "available": listing.get("available", True)}


async def _fetchable_rescrapes(
    work: Work[ScraperRepository], listed: set[StoreRef], *, chains: set[str], named: bool
) -> set[StoreRef]:
    """Return the pending re-scrapes the shop can answer; drop those it never will.

    A chain the shop does not sell for has nothing to fetch (unless the run names its chains,
    when other chains' requests wait for their own run). A store known only from a group
    change (its prices came in a file) is not in its chain's directory: each of its pages
    would answer 404 and fail every run.
    """
    rescrape = await work.repo.pending_rescrapes()
    unknown = {ref for ref in rescrape if ref.chain not in chains}
    unlisted = {ref for ref in rescrape if ref.chain in chains and ref not in listed}
    for dropped, why in (
        (set() if named else unknown, "chains the storefront lacks"),
        (unlisted, "stores it does not list"),
    ):
        if dropped:
            log.warning(
                f"dropping re-scrape requests of {why}", stores=sorted((r.chain, r.store_id) for r in dropped)
            )
            await work.repo.clear_rescrapes(stores=dropped)
    return rescrape - unlisted
