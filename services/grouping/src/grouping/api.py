"""The grouping service's read API: groups, a store's group, a store's prices, stats."""

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from grouping.queries import GroupingQueries


def build_api(*, queries: GroupingQueries) -> APIRouter:
    """Create the grouping service's /v1 routes."""
    router = APIRouter(prefix="/v1", tags=["grouping"])

    @router.get("/groups")
    async def list_groups(
        chain: str | None = None,
        cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Return groups in a stable order (by id), a page at a time."""
        groups = await queries.list_groups(chain=chain, after=cursor, limit=limit)
        return {
            "groups": [asdict(group) for group in groups],
            "next_cursor": groups[-1].group_id if len(groups) == limit else None,
        }

    @router.get("/stores/{chain}/{store_id}/group")
    async def store_group(chain: str, store_id: str) -> dict[str, Any]:
        """Return the group a store is in, with its anchor."""
        found = await queries.store_group(chain=chain, store_id=store_id)
        if found is None:
            raise HTTPException(404, f"no store {chain}/{store_id}")
        return asdict(found)

    @router.get("/stores/{chain}/{store_id}/prices")
    async def store_prices(chain: str, store_id: str) -> dict[str, Any]:
        """Answer a store's latest prices; a pruned member's come from its anchor."""
        found = await queries.store_prices(chain=chain, store_id=store_id)
        if found is None:
            raise HTTPException(404, f"no store {chain}/{store_id}")
        return {
            "chain": chain,
            "store_id": store_id,
            "anchor_store_id": found.anchor_store_id,
            "prices": [asdict(price) for price in found.prices],
        }

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Return stores, groups, and prices held versus answerable (the compression ratio)."""
        counts: dict[str, Any] = asdict(await queries.counts())
        held = counts["prices_held"]
        counts["compression_ratio"] = round(counts["prices_answerable"] / held, 2) if held else None
        return counts

    return router
