"""The scraper's read side: runs and their progress, and the store directory, for the HTTP API."""

from dataclasses import dataclass
from datetime import datetime

from servicekit.db import Database


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run with its progress; the fields in the order the API has always shown them."""

    run_id: str
    scope: str
    day: int | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    pages_total: int
    pages_done: int
    observations: int
    stores: int


@dataclass(frozen=True, slots=True)
class DirectoryStore:
    """A store of a chain's directory: its name and where it is (state, postcode when known)."""

    chain: str
    store_id: str
    name: str
    state: str | None
    postcode: str | None


class ScraperQueries:
    """Raw SQL reads, each on a connection of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def runs(self, *, limit: int) -> list[RunSummary]:
        """Return recent runs with their progress, newest first."""
        return await self._summaries(run_id=None, limit=limit)

    async def run(self, run_id: str) -> RunSummary | None:
        """Return a run's progress, or None when there is no such run."""
        found = await self._summaries(run_id=run_id, limit=1)
        return found[0] if found else None

    async def stores(self, *, chain: str | None) -> list[DirectoryStore]:
        """Return the chains' store directories (one chain, or all), by chain and store id."""
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT chain, store_id, name, state, postcode FROM stores
                   WHERE $1::text IS NULL OR chain = $1 ORDER BY chain, store_id""",
                chain,
            )
        return [DirectoryStore(**dict(r)) for r in rows]

    async def _summaries(self, *, run_id: str | None, limit: int) -> list[RunSummary]:
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
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
        return [
            RunSummary(
                run_id=r["run_id"],
                scope=r["scope"],
                day=r["day"],
                status=r["status"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                error=r["error"],
                pages_total=r["pages_total"],
                pages_done=r["pages_done"],
                observations=r["observations"],
                stores=r["stores"],
            )
            for r in rows
        ]
