"""The bargains service's read API: bargains with filters, and a product's price history."""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from bargains.repository import BargainsRepository
from bargains.settings import BargainsSettings
from servicekit.db import Database


def build_api(*, db: Database, settings: BargainsSettings) -> APIRouter:
    """Create the bargains service's /v1 routes."""
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
        async with db.pool.acquire() as conn:
            repo = BargainsRepository(conn)
            store_id = None
            if store is not None:
                if chain is None:
                    raise HTTPException(400, "store needs chain: store ids are per chain")
                store_id = await repo.anchor_of(chain=chain, store_id=store)
            rows = await repo.list_bargains(
                chain=chain,
                store_id=store_id,
                category=category,
                kind=kind,
                min_discount=min_discount,
                fresh_after=datetime.now(UTC) - timedelta(days=settings.freshness_days),
                after=cursor,
                limit=limit,
            )
        return {
            "bargains": rows,
            "answered_by": store_id,
            "next_cursor": rows[-1]["bargain_id"] if len(rows) == limit else None,
        }

    @router.get("/flags")
    async def list_flags(
        chain: str | None = None,
        kind: Literal["illusory", "outlier"] | None = None,
        limit: int = Query(default=1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """Return prices that look like bargains and are not, with the reason."""
        async with db.pool.acquire() as conn:
            return {"flags": await BargainsRepository(conn).list_flags(chain=chain, kind=kind, limit=limit)}

    @router.get("/products/{chain}/{sku}/history")
    async def history(chain: str, sku: str, store: str | None = None) -> dict[str, Any]:
        """Return a product's compact price history (one row per price change)."""
        async with db.pool.acquire() as conn:
            repo = BargainsRepository(conn)
            store_id = None if store is None else await repo.anchor_of(chain=chain, store_id=store)
            return {
                "chain": chain,
                "sku": sku,
                "history": await repo.history(chain=chain, sku=sku, store_id=store_id),
            }

    return router
