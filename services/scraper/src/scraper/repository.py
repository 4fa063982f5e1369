"""The scraper's write side: store directory, re-scrape queue, runs and tasks, products, quarantine."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from contracts.events.v1 import StoreGroupChangedPayload
from scraper.domain.ingest import Rejected
from scraper.domain.planning import Scope, StoreInfo, StoreRef, StoreState, Task
from servicekit.db import Connection, rows_affected

Source = Literal["scrape", "import", "ingest"]
"""How prices entered: the scraper's own runs, a file import, or the ingest endpoint."""

RunStatus = Literal["running", "finished", "failed"]


@dataclass(frozen=True, slots=True)
class Run:
    """A scrape run: its scope, the storefront day it scrapes, and the moment it stands for."""

    run_id: str
    scope: Scope
    day: int | None
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product as the scraper last described it."""

    sku: str
    name: str
    brand: str | None
    size: str | None
    category: str | None
    barcode: str | None
    url: str | None
    shared_category: str | None = None


@dataclass(frozen=True, slots=True)
class ProductChange:
    """A product description that is new, or differs from the one stored before."""

    product: ProductRow
    change: Literal["new", "changed"]


@dataclass(frozen=True, slots=True)
class IngestedPrice:
    """An observation that came in through a file or the ingest endpoint.

    Store, sku and time identify it: the same ones again are a duplicate, whatever the price.
    """

    chain: str
    store_id: str
    sku: str
    observed_at: datetime
    price_cents: int = field(compare=False)


class ScraperRepository(Protocol):
    """What the scraper's service layer writes and reads inside a unit of work."""

    async def upsert_stores(self, *, chain: str, stores: Sequence[StoreInfo]) -> None:
        """Add new stores of a chain and refresh names and addresses of known ones."""
        ...

    async def store_states(self, *, chains: Sequence[str]) -> list[StoreState]:
        """Return the planner's view of every store of the chains, by chain and store id."""
        ...

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> bool:
        """Record a group's membership unless a newer version was applied; return whether applied."""
        ...

    async def request_rescrape(self, *, store: StoreRef, reason: str) -> None:
        """Queue a store for the next run; a repeated request keeps the first."""
        ...

    async def pending_rescrapes(self) -> set[StoreRef]:
        """Return the stores waiting for a re-scrape."""
        ...

    async def clear_rescrapes(self, *, stores: Iterable[StoreRef]) -> None:
        """Drop requests a run has taken on."""
        ...

    async def create_run(self, *, run: Run, tasks: Sequence[Task]) -> None:
        """Record a run and every page it has to fetch."""
        ...

    async def unfinished_runs(self) -> list[str]:
        """Return runs a previous process started and did not finish, oldest first."""
        ...

    async def get_run(self, *, run_id: str) -> Run | None:
        """Return a run, or None when there is no such run."""
        ...

    async def pending_tasks(self, *, run_id: str) -> list[Task]:
        """Return the pages of a run not fetched yet: re-scrapes, anchors, then the rest."""
        ...

    async def complete_task(self, *, task: Task, observations: int, scraped_at: datetime) -> None:
        """Mark a page done and its store as scraped at `scraped_at` (never moved back)."""
        ...

    async def finish_run(self, *, run_id: str, status: RunStatus, error: str | None) -> None:
        """Close a run as finished or failed."""
        ...

    async def known_barcodes(self, *, chain: str, skus: Sequence[str]) -> dict[str, str]:
        """Return the barcodes already known for these products, by sku."""
        ...

    async def upsert_products(self, *, chain: str, products: Sequence[ProductRow]) -> list[ProductChange]:
        """Store product descriptions; return those that are new or changed, as stored now."""
        ...

    async def record_ingested(self, *, prices: Sequence[IngestedPrice]) -> set[IngestedPrice]:
        """Remember ingested observations; return those not seen before (same store, sku and time)."""
        ...

    async def quarantine(self, *, source: Source, rejected: Sequence[Rejected]) -> None:
        """Keep rejected rows with their reason."""
        ...

    async def forget_old(self, *, runs_before: datetime, quarantine_before: datetime) -> tuple[int, int]:
        """Delete runs that ended before a time (their pages with them) and older quarantined rows."""
        ...


class PostgresScraperRepository:
    """ScraperRepository in raw SQL over one connection; the caller owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- store directory and groups ---------------------------------------------------

    async def upsert_stores(self, *, chain: str, stores: Sequence[StoreInfo]) -> None:
        """Add new stores of a chain and refresh names and addresses of known ones."""
        await self.conn.execute(
            """INSERT INTO stores (chain, store_id, name, state, postcode)
               SELECT $1, s.id, s.name, s.state, s.postcode
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS s(id, name, state, postcode)
               ON CONFLICT (chain, store_id) DO UPDATE
               SET name = EXCLUDED.name, state = EXCLUDED.state, postcode = EXCLUDED.postcode""",
            chain,
            [s.store_id for s in stores],
            [s.name for s in stores],
            [s.state for s in stores],
            [s.postcode for s in stores],
        )

    async def store_states(self, *, chains: Sequence[str]) -> list[StoreState]:
        """Return the planner's view of every store of the chains, by chain and store id."""
        rows = await self.conn.fetch(
            """SELECT chain, store_id, role, group_id, last_scraped_at FROM stores
               WHERE chain = ANY($1::text[]) ORDER BY chain, store_id""",
            list(chains),
        )
        return [
            StoreState(
                chain=r["chain"],
                store_id=r["store_id"],
                role=r["role"],
                group_id=r["group_id"],
                last_scraped_at=r["last_scraped_at"],
            )
            for r in rows
        ]

    async def apply_group(self, *, group: StoreGroupChangedPayload) -> bool:
        """Record a group's membership unless a newer version was applied; return whether applied."""
        newest = await self.conn.fetchval(
            "SELECT max(group_version) FROM stores WHERE chain = $1 AND group_id = $2",
            group.chain,
            group.group_id,
        )
        if newest is not None and newest >= group.group_version:
            return False
        members = list(group.member_store_ids)
        # Stores that left the group are unplaced until grouping places them again.
        await self.conn.execute(
            """UPDATE stores SET role = 'unknown', group_id = NULL, group_version = NULL
               WHERE chain = $1 AND group_id = $2 AND store_id <> ALL($3::text[])""",
            group.chain,
            group.group_id,
            [group.anchor_store_id, *members] if group.reason != "dissolved" else [],
        )
        if group.reason == "dissolved":
            return True
        await self.conn.execute(
            """INSERT INTO stores (chain, store_id, name, role, group_id, group_version)
               SELECT $1, s.id, s.id, s.role, $2, $3
               FROM unnest($4::text[], $5::text[]) AS s(id, role)
               ON CONFLICT (chain, store_id) DO UPDATE
               SET role = EXCLUDED.role, group_id = EXCLUDED.group_id,
                   group_version = EXCLUDED.group_version""",
            group.chain,
            group.group_id,
            group.group_version,
            [group.anchor_store_id, *members],
            ["anchor", *["member"] * len(members)],
        )
        return True

    # --- re-scrape requests -------------------------------------------------------------

    async def request_rescrape(self, *, store: StoreRef, reason: str) -> None:
        """Queue a store for the next run; a repeated request keeps the first."""
        await self.conn.execute(
            """INSERT INTO rescrape_requests (chain, store_id, reason) VALUES ($1, $2, $3)
               ON CONFLICT (chain, store_id) DO NOTHING""",
            store.chain,
            store.store_id,
            reason,
        )

    async def pending_rescrapes(self) -> set[StoreRef]:
        """Return the stores waiting for a re-scrape."""
        rows = await self.conn.fetch("SELECT chain, store_id FROM rescrape_requests")
        return {StoreRef(chain=r["chain"], store_id=r["store_id"]) for r in rows}

    async def clear_rescrapes(self, *, stores: Iterable[StoreRef]) -> None:
        """Drop requests a run has taken on."""
        refs = list(stores)
        await self.conn.execute(
            """DELETE FROM rescrape_requests r
               USING unnest($1::text[], $2::text[]) AS s(chain, store_id)
               WHERE r.chain = s.chain AND r.store_id = s.store_id""",
            [ref.chain for ref in refs],
            [ref.store_id for ref in refs],
        )

    # --- runs and tasks -------------------------------------------------------------------

    async def create_run(self, *, run: Run, tasks: Sequence[Task]) -> None:
        """Record a run and every page it has to fetch."""
        await self.conn.execute(
            "INSERT INTO scrape_runs (run_id, scope, day, as_of) VALUES ($1, $2, $3, $4)",
            run.run_id,
            run.scope,
            run.day,
            run.as_of,
        )
        await self.conn.copy_records_to_table(
            "scrape_tasks",
            records=[(t.run_id, t.chain, t.store_id, t.category, t.page, t.reason) for t in tasks],
            columns=("run_id", "chain", "store_id", "category", "page", "reason"),
        )

    async def unfinished_runs(self) -> list[str]:
        """Return runs a previous process started and did not finish, oldest first."""
        rows = await self.conn.fetch(
            "SELECT run_id FROM scrape_runs WHERE status = 'running' ORDER BY started_at"
        )
        return [r["run_id"] for r in rows]

    async def get_run(self, *, run_id: str) -> Run | None:
        """Return a run, or None when there is no such run."""
        row = await self.conn.fetchrow(
            "SELECT run_id, scope, day, as_of FROM scrape_runs WHERE run_id = $1", run_id
        )
        if row is None:
            return None
        return Run(run_id=row["run_id"], scope=row["scope"], day=row["day"], as_of=row["as_of"])

    async def pending_tasks(self, *, run_id: str) -> list[Task]:
        """Return the pages of a run not fetched yet: re-scrapes, anchors, then the rest."""
        rows = await self.conn.fetch(
            """SELECT run_id, chain, store_id, category, page, reason FROM scrape_tasks
               WHERE run_id = $1 AND done_at IS NULL
               -- Anchors before the members checked against them.
               ORDER BY CASE reason WHEN 'rescrape' THEN 0 WHEN 'anchor' THEN 1 WHEN 'discover' THEN 2
                                    WHEN 'full' THEN 2 ELSE 3 END,
                        chain, store_id, category, page""",
            run_id,
        )
        return [
            Task(
                run_id=r["run_id"],
                chain=r["chain"],
                store_id=r["store_id"],
                category=r["category"],
                page=r["page"],
                reason=r["reason"],
            )
            for r in rows
        ]

    async def complete_task(self, *, task: Task, observations: int, scraped_at: datetime) -> None:
        """Mark a page done and its store as scraped at `scraped_at` (never moved back)."""
        await self.conn.execute(
            """UPDATE scrape_tasks SET done_at = now(), observations = $6
               WHERE run_id = $1 AND chain = $2 AND store_id = $3 AND category = $4 AND page = $5""",
            task.run_id,
            task.chain,
            task.store_id,
            task.category,
            task.page,
            observations,
        )
        await self.conn.execute(
            """UPDATE stores SET last_scraped_at = greatest(last_scraped_at, $3)
               WHERE chain = $1 AND store_id = $2""",
            task.chain,
            task.store_id,
            scraped_at,
        )

    async def finish_run(self, *, run_id: str, status: RunStatus, error: str | None) -> None:
        """Close a run as finished or failed."""
        await self.conn.execute(
            "UPDATE scrape_runs SET status = $2, error = $3, finished_at = now() WHERE run_id = $1",
            run_id,
            status,
            error,
        )

    # --- products ---------------------------------------------------------------------

    async def known_barcodes(self, *, chain: str, skus: Sequence[str]) -> dict[str, str]:
        """Return the barcodes already known for these products, by sku."""
        rows = await self.conn.fetch(
            """SELECT sku, barcode FROM products
               WHERE chain = $1 AND sku = ANY($2::text[]) AND barcode IS NOT NULL""",
            chain,
            list(skus),
        )
        return {r["sku"]: r["barcode"] for r in rows}

    async def upsert_products(self, *, chain: str, products: Sequence[ProductRow]) -> list[ProductChange]:
        """Store product descriptions; return those that are new or changed, as stored now."""
        if not products:
            return []
        rows = await self.conn.fetch(
            # A row without a category keeps the shared category known; one with a category
            # takes the map's answer for it, so a corrected map re-describes the product.
            """INSERT INTO products AS p (chain, sku, name, brand, size, category, barcode, url,
                                          shared_category)
               SELECT $1, i.sku, i.name, i.brand, i.size, i.category, i.barcode, i.url, i.shared
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                           $8::text[], $9::text[])
                    AS i(sku, name, brand, size, category, barcode, url, shared)
               ON CONFLICT (chain, sku) DO UPDATE
               SET name = EXCLUDED.name, brand = EXCLUDED.brand, size = EXCLUDED.size,
                   category = coalesce(EXCLUDED.category, p.category),
                   barcode = coalesce(EXCLUDED.barcode, p.barcode),
                   url = coalesce(EXCLUDED.url, p.url),
                   shared_category = CASE WHEN EXCLUDED.category IS NULL THEN p.shared_category
                                          ELSE EXCLUDED.shared_category END,
                   updated_at = now()
               WHERE (p.name, p.brand, p.size, p.barcode, p.shared_category)
                     IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.brand, EXCLUDED.size,
                                       coalesce(EXCLUDED.barcode, p.barcode),
                                       CASE WHEN EXCLUDED.category IS NULL THEN p.shared_category
                                            ELSE EXCLUDED.shared_category END)
               RETURNING sku, name, brand, size, category, barcode, url, shared_category,
                         (xmax = 0) AS inserted""",
            chain,
            [p.sku for p in products],
            [p.name for p in products],
            [p.brand for p in products],
            [p.size for p in products],
            [p.category for p in products],
            [p.barcode for p in products],
            [p.url for p in products],
            [p.shared_category for p in products],
        )
        return [
            ProductChange(
                product=ProductRow(
                    sku=r["sku"],
                    name=r["name"],
                    brand=r["brand"],
                    size=r["size"],
                    category=r["category"],
                    barcode=r["barcode"],
                    url=r["url"],
                    shared_category=r["shared_category"],
                ),
                change="new" if r["inserted"] else "changed",
            )
            for r in rows
        ]

    # --- ingest -----------------------------------------------------------------------

    async def record_ingested(self, *, prices: Sequence[IngestedPrice]) -> set[IngestedPrice]:
        """Remember ingested observations; return those not seen before (same store, sku and time)."""
        fresh = await self.conn.fetch(
            """INSERT INTO ingested_prices (chain, store_id, sku, observed_at, price_cents)
               SELECT i.chain, i.store_id, i.sku, i.observed_at, i.price_cents
               FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[])
                    AS i(chain, store_id, sku, observed_at, price_cents)
               ON CONFLICT DO NOTHING RETURNING chain, store_id, sku, observed_at, price_cents""",
            [p.chain for p in prices],
            [p.store_id for p in prices],
            [p.sku for p in prices],
            [p.observed_at for p in prices],
            [p.price_cents for p in prices],
        )
        return {
            IngestedPrice(
                chain=r["chain"],
                store_id=r["store_id"],
                sku=r["sku"],
                observed_at=r["observed_at"],
                price_cents=r["price_cents"],
            )
            for r in fresh
        }

    async def quarantine(self, *, source: Source, rejected: Sequence[Rejected]) -> None:
        """Keep rejected rows with their reason."""
        if rejected:
            await self.conn.copy_records_to_table(
                "quarantine",
                records=[(source, r.reason, json.dumps(r.raw, default=str)) for r in rejected],
                columns=("source", "reason", "raw"),
            )

    async def forget_old(self, *, runs_before: datetime, quarantine_before: datetime) -> tuple[int, int]:
        """Delete runs that ended before a time (their pages with them) and older quarantined rows."""
        runs = await self.conn.execute(
            "DELETE FROM scrape_runs WHERE status <> 'running' AND finished_at < $1", runs_before
        )
        rows = await self.conn.execute("DELETE FROM quarantine WHERE received_at < $1", quarantine_before)
        return rows_affected(runs), rows_affected(rows)
