"""The scraper's SQL: store directory, re-scrape queue, runs and tasks, products, quarantine."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.events.v1 import StoreGroupChangedPayload
from scraper.domain.planning import StoreState
from servicekit.db import Connection


@dataclass(frozen=True, slots=True)
class Task:
    """One page of one category at one store, within a run."""

    run_id: str
    chain: str
    store_id: str
    category: str
    page: int
    reason: str


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


class ScraperRepository:
    """Raw SQL over one connection; the caller owns the transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- store directory and groups ---------------------------------------------------

    async def upsert_stores(self, *, chain: str, stores: Sequence[dict[str, Any]]) -> None:
        """Add new stores of a chain and refresh names and addresses of known ones."""
        await self.conn.execute(
            """INSERT INTO stores (chain, store_id, name, state, postcode)
               SELECT $1, s.id, s.name, s.state, s.postcode
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS s(id, name, state, postcode)
               ON CONFLICT (chain, store_id) DO UPDATE
               SET name = EXCLUDED.name, state = EXCLUDED.state, postcode = EXCLUDED.postcode""",
            chain,
            [str(s["id"]) for s in stores],
            [str(s["name"]) for s in stores],
            [s.get("state") for s in stores],
            [s.get("postcode") for s in stores],
        )

    async def store_states(self, *, chains: Sequence[str]) -> list[StoreState]:
        """Return the planner's view of every store of the chains."""
        rows = await self.conn.fetch(
            """SELECT chain, store_id, role, group_id, last_scraped_at FROM stores
               WHERE chain = ANY($1::text[]) ORDER BY chain, store_id""",
            list(chains),
        )
        return [
            StoreState(r["chain"], r["store_id"], r["role"], r["group_id"], r["last_scraped_at"])
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

    async def request_rescrape(self, *, chain: str, store_id: str, reason: str) -> None:
        """Queue a store for the next run; a repeated request keeps the first."""
        await self.conn.execute(
            """INSERT INTO rescrape_requests (chain, store_id, reason) VALUES ($1, $2, $3)
               ON CONFLICT (chain, store_id) DO NOTHING""",
            chain,
            store_id,
            reason,
        )

    async def pending_rescrapes(self) -> set[tuple[str, str]]:
        """Return the stores waiting for a re-scrape."""
        rows = await self.conn.fetch("SELECT chain, store_id FROM rescrape_requests")
        return {(r["chain"], r["store_id"]) for r in rows}

    async def clear_rescrapes(self, *, stores: Iterable[tuple[str, str]]) -> None:
        """Drop requests a run has taken on."""
        pairs = list(stores)
        await self.conn.execute(
            """DELETE FROM rescrape_requests r
               USING unnest($1::text[], $2::text[]) AS s(chain, store_id)
               WHERE r.chain = s.chain AND r.store_id = s.store_id""",
            [c for c, _ in pairs],
            [s for _, s in pairs],
        )

    # --- runs and tasks -------------------------------------------------------------------

    async def create_run(
        self, *, run_id: str, scope: str, day: int | None, as_of: datetime | None, tasks: Sequence[Task]
    ) -> None:
        """Record a run and every page it has to fetch."""
        await self.conn.execute(
            "INSERT INTO scrape_runs (run_id, scope, day, as_of) VALUES ($1, $2, $3, $4)",
            run_id,
            scope,
            day,
            as_of,
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

    async def run_day(self, *, run_id: str) -> tuple[int | None, datetime | None]:
        """Return the storefront day a run scrapes (None: the shop's clock) and the moment it stands for."""
        row = await self.conn.fetchrow("SELECT day, as_of FROM scrape_runs WHERE run_id = $1", run_id)
        return (row["day"], row["as_of"]) if row is not None else (None, None)

    async def pending_tasks(self, *, run_id: str) -> list[Task]:
        """Return the pages of a run not fetched yet, store by store."""
        rows = await self.conn.fetch(
            """SELECT run_id, chain, store_id, category, page, reason FROM scrape_tasks
               WHERE run_id = $1 AND done_at IS NULL
               -- Anchors before the members checked against them.
               ORDER BY CASE reason WHEN 'rescrape' THEN 0 WHEN 'anchor' THEN 1 WHEN 'discover' THEN 2
                                    WHEN 'full' THEN 2 ELSE 3 END,
                        chain, store_id, category, page""",
            run_id,
        )
        return [Task(**dict(r)) for r in rows]

    async def complete_task(self, *, task: Task, observations: int, scraped_at: datetime) -> None:
        """Mark a page done and its store as scraped at `scraped_at`."""
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

    async def finish_run(self, *, run_id: str, status: str, error: str | None = None) -> None:
        """Close a run as finished or failed."""
        await self.conn.execute(
            "UPDATE scrape_runs SET status = $2, error = $3, finished_at = now() WHERE run_id = $1",
            run_id,
            status,
            error,
        )

    async def run_summaries(self, *, run_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Return runs with their progress, newest first (one run when `run_id` is given)."""
        rows = await self.conn.fetch(
            """SELECT r.run_id, r.scope, r.day, r.status, r.started_at, r.finished_at, r.error,
                      count(t.*) AS pages_total, count(t.done_at) AS pages_done,
                      coalesce(sum(t.observations), 0) AS observations,
                      count(DISTINCT t.chain || '/' || t.store_id) AS stores
               FROM scrape_runs r LEFT JOIN scrape_tasks t USING (run_id)
               WHERE $1::text IS NULL OR r.run_id = $1
               GROUP BY r.run_id ORDER BY r.started_at DESC LIMIT $2""",
            run_id,
            limit,
        )
        return [dict(r) for r in rows]

    # --- products ---------------------------------------------------------------------

    async def known_barcodes(self, *, chain: str, skus: Sequence[str]) -> dict[str, str]:
        """Return the barcodes already known for these products."""
        rows = await self.conn.fetch(
            """SELECT sku, barcode FROM products
               WHERE chain = $1 AND sku = ANY($2::text[]) AND barcode IS NOT NULL""",
            chain,
            list(skus),
        )
        return {r["sku"]: r["barcode"] for r in rows}

    async def upsert_products(
        self, *, chain: str, products: Sequence[ProductRow]
    ) -> list[tuple[ProductRow, str]]:
        """Store product descriptions; return those that are new or changed, with which."""
        if not products:
            return []
        columns = ("sku", "name", "brand", "size", "category", "barcode", "url")
        rows = await self.conn.fetch(
            """INSERT INTO products AS p (chain, sku, name, brand, size, category, barcode, url)
               SELECT $1, i.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                          $7::text[], $8::text[]) AS i
               ON CONFLICT (chain, sku) DO UPDATE
               SET name = EXCLUDED.name, brand = EXCLUDED.brand, size = EXCLUDED.size,
                   category = coalesce(EXCLUDED.category, p.category),
                   barcode = coalesce(EXCLUDED.barcode, p.barcode),
                   url = coalesce(EXCLUDED.url, p.url), updated_at = now()
               WHERE (p.name, p.brand, p.size, p.barcode)
                     IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.brand, EXCLUDED.size,
                                       coalesce(EXCLUDED.barcode, p.barcode))
               RETURNING sku, name, brand, size, category, barcode, url, (xmax = 0) AS inserted""",
            chain,
            *([getattr(p, c) for p in products] for c in columns),
        )
        return [(ProductRow(*(r[c] for c in columns)), "new" if r["inserted"] else "changed") for r in rows]

    # --- ingest -----------------------------------------------------------------------

    async def record_ingested(
        self, *, rows: Sequence[tuple[str, str, str, datetime, int]]
    ) -> set[tuple[str, str, str, datetime]]:
        """Remember ingested observations; return the keys that were not seen before."""
        fresh = await self.conn.fetch(
            """INSERT INTO ingested_prices (chain, store_id, sku, observed_at, price_cents)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[])
               ON CONFLICT DO NOTHING RETURNING chain, store_id, sku, observed_at""",
            *(list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [], []),
        )
        return {(r["chain"], r["store_id"], r["sku"], r["observed_at"]) for r in fresh}

    async def quarantine(self, *, source: str, rejected: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Keep rejected rows with their reason; return how many."""
        if rejected:
            await self.conn.copy_records_to_table(
                "quarantine",
                records=[(source, reason, json.dumps(raw, default=str)) for reason, raw in rejected],
                columns=("source", "reason", "raw"),
            )
        return len(rejected)
