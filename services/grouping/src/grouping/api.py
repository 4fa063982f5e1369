"""The grouping service's read API: groups, a store's group, a store's prices, stats."""

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from grouping.repository import GroupingRepository
from servicekit.db import Database


def build_api(*, db: Database) -> APIRouter:
    """Create the grouping service's /v1 routes."""
    router = APIRouter(prefix="/v1", tags=["grouping"])

    @router.get("/groups")
    async def list_groups(
        chain: str | None = None,
        cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Return groups in a stable order (by id), a page at a time."""
        async with db.pool.acquire() as conn:
            groups = await GroupingRepository(conn).list_groups(chain=chain, after=cursor, limit=limit)
        return {"groups": groups, "next_cursor": groups[-1]["group_id"] if len(groups) == limit else None}

    @router.get("/stores/{chain}/{store_id}/group")
    async def store_group(chain: str, store_id: str) -> dict[str, Any]:
        """Return the group a store is in, with its anchor."""
        async with db.pool.acquire() as conn:
            found = await GroupingRepository(conn).store_group(chain=chain, store_id=store_id)
        if found is None:
            raise HTTPException(404, f"no store {chain}/{store_id}")
        return found

    @router.get("/stores/{chain}/{store_id}/prices")
    async def store_prices(chain: str, store_id: str) -> dict[str, Any]:
        """Answer a store's latest prices; a pruned member's come from its anchor."""
        async with db.pool.acquire() as conn:
            repo = GroupingRepository(conn)
            found = await repo.store_group(chain=chain, store_id=store_id)
            if found is None:
                raise HTTPException(404, f"no store {chain}/{store_id}")
            prices = await repo.store_prices(chain=chain, store_id=store_id, anchor=found["anchor_store_id"])
        return {
            "chain": chain,
            "store_id": store_id,
            "anchor_store_id": found["anchor_store_id"],
            "prices": prices,
        }

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Return stores, groups, and prices held versus answerable (the compression ratio)."""
        async with db.pool.acquire() as conn:
            counts: dict[str, Any] = await GroupingRepository(conn).counts()
        answerable = counts["prices_answerable"]
        counts["compression_ratio"] = (
            round(answerable / counts["prices_held"], 2) if counts["prices_held"] else None
        )
        return counts

    return router
