"""The substitutions service's read API: a product's substitutes, rebuilds, figures."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query

from servicekit.db import Database
from substitutions.matcher import Matcher
from substitutions.repository import SubstitutionsRepository

LevelName = Literal["L1", "L2", "L3", "L4"]


def build_api(*, db: Database, matcher: Matcher) -> APIRouter:
    """Create the substitutions service's /v1 routes."""
    router = APIRouter(prefix="/v1", tags=["substitutions"])

    @router.get("/products/{chain}/{sku}/substitutions")
    async def substitutions(
        chain: str,
        sku: str,
        level: Annotated[
            list[LevelName] | None, Query(description="Only these levels, e.g. level=L1")
        ] = None,
    ) -> dict[str, Any]:
        """Return a product's substitutes, best first within each level."""
        async with db.pool.acquire() as conn:
            repo = SubstitutionsRepository(conn)
            rows = await repo.substitutes(chain=chain, sku=sku, levels=level)
            if rows is None:
                raise HTTPException(404, f"no substitutes computed for {chain}/{sku}")
            names = await repo.names(keys=[(chain, sku), *((row["chain"], row["sku"]) for row in rows)])
        return {
            "chain": chain,
            "sku": sku,
            "name": names.get((chain, sku)),
            "substitutes": [{**row, "name": names.get((row["chain"], row["sku"]))} for row in rows],
        }

    @router.post("/rebuilds", status_code=202)
    async def start_rebuild(background: BackgroundTasks) -> dict[str, Any]:
        """Start recomputing every product's substitutes; follow it at GET /v1/rebuilds/latest."""
        if not matcher.ready.is_set():
            raise HTTPException(503, "the model and catalogue are still loading")
        progress = matcher.begin_rebuild()
        if progress is None:
            return {"status": "already running"}
        background.add_task(matcher.rebuild, progress)
        return {"status": "started"}

    @router.get("/rebuilds/latest")
    async def latest_rebuild() -> dict[str, Any]:
        """Return the progress of the latest rebuild."""
        return matcher.progress.as_dict()

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Count products, cached embeddings and substitutes per level, with incremental timings."""
        async with db.pool.acquire() as conn:
            stored = await SubstitutionsRepository(conn).stats()
        return {**stored, "matcher": matcher.stats()}

    return router
