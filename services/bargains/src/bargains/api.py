"""The bargains service's read API: bargains with filters, and a product's price history."""

from dataclasses import asdict
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from bargains.queries import BargainsQueries
from servicekit.clock import Clock
from servicekit.db import Database


def build_api(*, db: Database, freshness: timedelta, clock: Clock) -> APIRouter:
    """Create the bargains service's /v1 routes; only bargains seen within `freshness` are listed."""
    router = APIRouter(prefix="/v1", tags=["bargains"])

    @router.get("/bargains")
    async def list_bargains(
        chain: str | None = Query(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,31}$"),
        store: str | None = Query(default=None, description="A member store gets its anchor's bargains"),
        category: str | None = None,
        kind: Literal["discount", "cross_chain", "historical_low"] | None = None,
        min_discount: float | None = Query(default=None, ge=0, le=1, description="Share, e.g. 0.2"),
        cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Return current bargains in a stable, unique order (bargain id), a page at a time."""
        fresh_after = clock() - freshness
        async with db.pool.acquire() as conn:
            queries = BargainsQueries(conn)
            store_id = None
            if store is not None:
                if chain is None:
                    raise HTTPException(400, "store needs chain: store ids are per chain")
                store_id = await queries.anchor_of(chain=chain, store_id=store)
            rows = await queries.list_bargains(
                chain=chain,
                store_id=store_id,
                category=category,
                kind=kind,
                min_discount=min_discount,
                fresh_after=fresh_after,
                after=cursor,
                limit=limit,
            )
        return {
            "bargains": [asdict(row) for row in rows],
            "answered_by": store_id,
            "next_cursor": rows[-1].bargain_id if len(rows) == limit else None,
        }

    @router.get("/flags")
    async def list_flags(
        chain: str | None = None,
        kind: Literal["illusory", "outlier"] | None = None,
        limit: int = Query(default=1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """Return prices that look like bargains and are not, with the reason."""
        async with db.pool.acquire() as conn:
            rows = await BargainsQueries(conn).list_flags(chain=chain, kind=kind, limit=limit)
        return {"flags": [asdict(row) for row in rows]}

    @router.get("/products/{chain}/{sku}/history")
    async def history(chain: str, sku: str, store: str | None = None) -> dict[str, Any]:
        """Return a product's compact price history (one row per price change)."""
        async with db.pool.acquire() as conn:
            queries = BargainsQueries(conn)
            store_id = None if store is None else await queries.anchor_of(chain=chain, store_id=store)
            rows = await queries.history(chain=chain, sku=sku, store_id=store_id)
            # History of the chain that ended before this lies in the archive (`pricestream archive`).
            archived_before = await queries.archived_before(chain)
        return {
            "chain": chain,
            "sku": sku,
            "history": [asdict(row) for row in rows],
            "archived_before": archived_before,
        }

    return router
