"""The scraper's HTTP API: scrape runs, the store directory, and the ingest endpoint."""

import secrets
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from scraper.domain.planning import Scope
from scraper.queries import ScraperQueries
from scraper.service_layer.ingestion import Ingestor
from scraper.service_layer.runs import UnknownChainError
from scraper.settings import ScraperSettings
from scraper.workers import ScrapeRunner
from servicekit.clock import Clock


class RunRequest(BaseModel):
    """Start a scrape run: which stores (plan, all, rescrape), which day, which chains."""

    model_config = ConfigDict(extra="forbid")

    scope: Scope = "plan"
    day: int | None = Field(default=None, ge=0)
    chains: list[str] = Field(default_factory=list)
    as_of: AwareDatetime | None = Field(
        default=None, description="The past moment the run stands for (replaying a day); default: now"
    )

    @field_validator("as_of")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        """Refuse a moment in the future: observations from the future are rejected downstream."""
        if value is not None and value > datetime.now(UTC) + timedelta(minutes=1):
            raise ValueError("as_of is in the future")
        return value.astimezone(UTC) if value is not None else None


class IngestRequest(BaseModel):
    """Rows in the importers' raw shape, with defaults for chain and store."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]]
    chain: str | None = None
    store_id: str | None = None
    source: Literal["import", "ingest"] = "ingest"
    observed_at: AwareDatetime | None = Field(
        default=None, description="When rows without a timestamp were observed (default: now)"
    )


def build_api(
    *,
    queries: ScraperQueries,
    runner: ScrapeRunner,
    ingestor: Ingestor,
    settings: ScraperSettings,
    clock: Clock,
) -> APIRouter:
    """Create the scraper's /v1 routes."""
    router = APIRouter(prefix="/v1", tags=["scraper"])

    @router.post("/runs", status_code=202)
    async def start_run(request: RunRequest) -> dict[str, str]:
        """Plan a run and start it in the background; 404 for a chain the shop does not have."""
        try:
            run_id = await runner.start_run(
                scope=request.scope, day=request.day, chains=request.chains, as_of=request.as_of, now=clock()
            )
        except UnknownChainError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"run_id": run_id}

    @router.get("/runs")
    async def list_runs(limit: int = Query(default=20, ge=1, le=200)) -> dict[str, Any]:
        """Return recent runs with their progress, newest first."""
        return {"runs": [asdict(run) for run in await queries.runs(limit=limit)]}

    @router.get("/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, Any]:
        """Return a run's progress."""
        run = await queries.run(run_id)
        if run is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return asdict(run)

    @router.get("/stores")
    async def list_stores(chain: str | None = None) -> dict[str, Any]:
        """Return the store directory (name, state, postcode), one chain's or every chain's."""
        return {"stores": [asdict(store) for store in await queries.stores(chain=chain)]}

    @router.post("/observations")
    async def ingest(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """Validate and publish observations from another scraper (bearer token)."""
        _authorize(settings.ingest_token, authorization)
        body = await _read_capped(request, settings.ingest_max_bytes)
        try:
            batch = IngestRequest.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
        if len(batch.rows) > settings.ingest_max_rows:
            raise HTTPException(413, f"at most {settings.ingest_max_rows} rows per request")
        try:
            result = await ingestor.ingest(
                batch.rows,
                default_chain=batch.chain,
                default_store=batch.store_id,
                source=batch.source,
                observed_at=batch.observed_at,
                now=clock(),
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return result.as_dict()

    return router


def _authorize(expected: SecretStr | None, authorization: str | None) -> None:
    """Refuse a request without the ingest endpoint's bearer token (503 while none is configured)."""
    if expected is None:
        raise HTTPException(503, "ingest is disabled: set SCRAPER_INGEST_TOKEN")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token, expected.get_secret_value()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


async def _read_capped(request: Request, limit: int) -> bytes:
    """Read a request body, refusing it as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
