"""The substitutions service's read API: a product's substitutes, rebuilds, figures."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query

from servicekit.clock import Clock
from servicekit.db import Database
from substitutions.queries import NamedSubstitute, SubstitutionsQueries
from substitutions.service_layer import Matcher

LevelName = Literal["L1", "L2", "L3", "L4"]


def build_api(*, db: Database, matcher: Matcher, clock: Clock) -> APIRouter:
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
            found = await SubstitutionsQueries(conn).substitutes(chain=chain, sku=sku, levels=level)
        if found is None:
            raise HTTPException(404, f"no substitutes computed for {chain}/{sku}")
        return {
            "chain": found.chain,
            "sku": found.sku,
            "name": found.name,
            "substitutes": [_substitute(row) for row in found.substitutes],
        }

    @router.post("/rebuilds", status_code=202)
    async def start_rebuild(background: BackgroundTasks) -> dict[str, Any]:
        """Start recomputing every product's substitutes; follow it at GET /v1/rebuilds/latest."""
        if not matcher.ready.is_set():
            raise HTTPException(503, "the model and catalogue are still loading")
        progress = matcher.begin_rebuild()
        if progress is None:
            return {"status": "already running"}
        background.add_task(matcher.rebuild, progress, now=clock())
        return {"status": "started"}

    @router.get("/rebuilds/latest")
    async def latest_rebuild() -> dict[str, Any]:
        """Return the progress of the latest rebuild."""
        return matcher.progress.as_dict()

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Count products, cached embeddings and substitutes per level, with incremental timings."""
        async with db.pool.acquire() as conn:
            stored = await SubstitutionsQueries(conn).figures()
        return {
            "products": stored.products,
            "embeddings": stored.embeddings,
            "lists": stored.lists,
            "substitutes": stored.substitutes,
            "matcher": matcher.stats(),
        }

    return router


def _substitute(row: NamedSubstitute) -> dict[str, Any]:
    """Write a substitute as the API shows it (keys in the order PostgreSQL's jsonb gave them)."""
    return {
        "sku": row.sku,
        "chain": row.chain,
        "level": row.level,
        "score": row.score,
        "reason": row.reason,
        "name": row.name,
    }
