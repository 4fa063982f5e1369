"""Scrape runs: plan the stores, record every page to fetch, fetch and stage them, resume."""

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import structlog

from contracts.events.v1 import PageRef
from scraper.domain.ingest import Accepted, validate_row
from scraper.domain.planning import PlanPolicy, Scope, plan_stores
from scraper.fetching import FetchError
from scraper.repository import ProductRow, ScraperRepository, Task
from scraper.settings import ScraperSettings
from scraper.shop import StorefrontClient
from scraper.staging import stage_prices
from scraper.telemetry import ScraperCounters
from servicekit.db import Database

log = structlog.get_logger(__name__)


class ScrapeRunner:
    """Start runs on request or on schedule, execute them, and resume them after a restart."""

    name = "scrape-runner"

    def __init__(
        self, *, db: Database, shop: StorefrontClient, settings: ScraperSettings, counters: ScraperCounters
    ) -> None:
        self.db = db
        self.shop = shop
        self.settings = settings
        self.policy = PlanPolicy(
            anchor_interval=timedelta(hours=settings.anchor_interval_h),
            member_check_interval=timedelta(hours=settings.member_check_interval_h),
            member_sample_share=settings.member_sample_share,
        )
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._barcodes: dict[tuple[str, str], asyncio.Task[str | None]] = {}
        self.counters = counters

    # --- starting runs ----------------------------------------------------------------

    async def start_run(
        self,
        *,
        scope: Scope = "plan",
        day: int | None = None,
        chains: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> str:
        """Sync the store directory, plan the stores, record the run's pages; return its id.

        `as_of` makes the run stand for a past moment: it plans for then and its prices are
        observed then (replaying a simulated day); by default each page is observed when fetched.
        """
        requested_chains = list(chains)
        chains = requested_chains or await self.shop.chains()
        directories = {chain: await self.shop.stores(chain) for chain in chains}
        categories = {chain: await self.shop.categories(chain) for chain in chains}
        run_id = f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid4().hex[:6]}"
        async with self.db.pool.acquire() as conn, conn.transaction():
            repo = ScraperRepository(conn)
            for chain, stores in directories.items():
                await repo.upsert_stores(chain=chain, stores=stores)
            rescrape = await repo.pending_rescrapes()
            unknown = {(c, s) for c, s in rescrape if c not in directories}
            if unknown and not requested_chains:
                # The shop does not sell for these chains: nothing to fetch, ever.
                log.warning(
                    "dropping re-scrape requests of chains the storefront lacks", stores=sorted(unknown)
                )
                await repo.clear_rescrapes(stores=unknown)
            planned = plan_stores(
                await repo.store_states(chains=chains),
                rescrape=rescrape,
                now=as_of or datetime.now(UTC),
                policy=self.policy,
                scope=scope,
            )
            tasks = [
                Task(run_id, store.chain, store.store_id, category["slug"], page, store.reason)
                for store in planned
                for category in categories[store.chain]
                for page in range(1, int(category["pages"]) + 1)
            ]
            await repo.create_run(run_id=run_id, scope=scope, day=day, as_of=as_of, tasks=tasks)
            await repo.clear_rescrapes(
                stores=[(s.chain, s.store_id) for s in planned if s.reason == "rescrape"]
            )
        log.info(
            "scrape run planned", run_id=run_id, scope=scope, day=day, stores=len(planned), pages=len(tasks)
        )
        self._queue.put_nowait(run_id)
        return run_id

    # --- the background loop ----------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Resume unfinished runs, then execute runs as they come; serve re-scrapes and schedules."""
        async with self.db.pool.acquire() as conn:
            for unfinished in await ScraperRepository(conn).unfinished_runs():
                log.info("resuming scrape run", run_id=unfinished)
                self._queue.put_nowait(unfinished)
        last_auto = time.monotonic()
        while not stopping.is_set():
            run_id: str | None = None
            with contextlib.suppress(TimeoutError):
                run_id = await asyncio.wait_for(self._queue.get(), self.settings.rescrape_poll_s)
            try:
                if run_id is not None:
                    await self.execute(run_id, stopping)
                    continue
                interval = self.settings.auto_scrape_interval_s
                if interval and time.monotonic() - last_auto >= interval:
                    last_auto = time.monotonic()
                    await self.start_run(scope="plan")
                elif await self._has_rescrapes():
                    await self.start_run(scope="rescrape")
            except Exception as exc:
                log.error("scrape loop step failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    async def _has_rescrapes(self) -> bool:
        async with self.db.pool.acquire() as conn:
            return bool(await ScraperRepository(conn).pending_rescrapes())

    # --- executing a run --------------------------------------------------------------

    async def execute(self, run_id: str, stopping: asyncio.Event) -> None:
        """Fetch and stage every pending page of a run with a pool of workers."""
        async with self.db.pool.acquire() as conn:
            repo = ScraperRepository(conn)
            tasks = await repo.pending_tasks(run_id=run_id)
            day, as_of = await repo.run_day(run_id=run_id)
        queue: asyncio.Queue[Task] = asyncio.Queue()
        for task in tasks:
            queue.put_nowait(task)
        failures: list[str] = []
        started = time.monotonic()

        async def worker() -> None:
            while not stopping.is_set():
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await self.scrape_page(task, day, as_of)
                except FetchError as exc:
                    failures.append(str(exc))
                    log.warning("page failed, left for a later resume", run_id=run_id, error=str(exc))

        await asyncio.gather(*(worker() for _ in range(self.settings.run_workers)))
        if stopping.is_set() and not queue.empty():
            log.info("scrape run paused for shutdown", run_id=run_id, pages_left=queue.qsize())
            return
        status, error = (
            ("failed", f"{len(failures)} pages failed; last: {failures[-1]}")
            if failures
            else ("finished", None)
        )
        async with self.db.pool.acquire() as conn:
            await ScraperRepository(conn).finish_run(run_id=run_id, status=status, error=error)
        log.info(
            "scrape run done",
            run_id=run_id,
            status=status,
            pages=len(tasks) - len(failures),
            seconds=round(time.monotonic() - started, 2),
            retries=dict(self.shop.fetcher.stats.retries),
        )

    async def scrape_page(self, task: Task, day: int | None, as_of: datetime | None = None) -> None:
        """Fetch one page, then stage its events and mark it done in one transaction."""
        body = await self.shop.page(task.chain, task.store_id, task.category, task.page, day)
        observed_at = as_of or datetime.now(UTC)
        verdicts = [
            validate_row(
                _listing_row(listing, task.category),
                default_chain=task.chain,
                default_store=task.store_id,
                now=observed_at,
            )
            for listing in body["products"]
        ]
        accepted = [v for v in verdicts if isinstance(v, Accepted)]
        rejected = [(v.reason, v.raw) for v in verdicts if not isinstance(v, Accepted)]
        products = await self._with_barcodes(task.chain, accepted)
        async with self.db.pool.acquire() as conn, conn.transaction():
            repo = ScraperRepository(conn)
            await stage_prices(
                repo,
                chain=task.chain,
                store_id=task.store_id,
                source="scrape",
                observations=[a.observation for a in accepted],
                products=products,
                observed_at=observed_at,
                run_id=task.run_id,
                page=PageRef(category=task.category, page=task.page),
            )
            await repo.quarantine(source="scrape", rejected=rejected)
            await repo.complete_task(task=task, observations=len(accepted), scraped_at=observed_at)
        self.counters.pages.inc()
        self.counters.observations.inc(len(accepted))

    async def _with_barcodes(self, chain: str, accepted: list[Accepted]) -> list[ProductRow]:
        """Describe the page's products, fetching a barcode only for products never seen."""
        async with self.db.pool.acquire() as conn:
            known = await ScraperRepository(conn).known_barcodes(
                chain=chain, skus=[a.observation.sku for a in accepted]
            )
        rows = []
        for item in accepted:
            if item.product is None:
                continue
            sku = item.observation.sku
            barcode = known.get(sku) or item.product.barcode or await self._barcode(chain, sku)
            info = item.product
            rows.append(ProductRow(sku, info.name, info.brand, info.size, info.category, barcode, info.url))
        return rows

    async def _barcode(self, chain: str, sku: str) -> str | None:
        """Fetch a product's barcode once, even when many pages ask for it at the same time."""
        key = (chain, sku)
        fetch = self._barcodes.get(key)
        if fetch is None or (fetch.done() and (fetch.cancelled() or fetch.exception() is not None)):
            # Remembered for the process's life; a failed fetch is tried again next time.
            fetch = self._barcodes[key] = asyncio.create_task(self._fetch_barcode(chain, sku))
        return await asyncio.shield(fetch)

    async def _fetch_barcode(self, chain: str, sku: str) -> str | None:
        detail = await self.shop.product(chain, sku)
        barcode = detail.get("barcode")
        return str(barcode) if barcode else None


def _listing_row(listing: dict[str, Any], category: str) -> dict[str, Any]:
    """Map a storefront listing to the importers' raw row shape."""
    return {
        "sku": listing.get("sku"),
        "name": listing.get("name"),
        "brand": listing.get("brand"),
        "size": listing.get("size"),
        "category": category,
        "price": listing.get("price"),
        "was_price": listing.get("was_price"),
        "available": listing.get("available", True),
    }
