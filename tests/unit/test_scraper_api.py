"""The scraper's HTTP routes in memory: the store directory, the ingest endpoint's token and caps, a run."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from contracts.events import PricesScraped
from scraper.api import build_api
from scraper.domain.planning import Category, PlanPolicy, StoreInfo
from scraper.queries import DirectoryStore, ScraperQueries
from scraper.service_layer.ingestion import Ingestor
from scraper.service_layer.runs import ScrapeRuns
from scraper.settings import ScraperSettings
from scraper.telemetry import ScraperCounters
from scraper.workers import ScrapeRunner
from servicekit.db import Database
from tests.fakes.scraper import FakeShop, InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Uow = FakeUnitOfWork[InMemoryScraperRepository]


class _Directory(ScraperQueries):
    """The store directory held in memory; every other read still needs PostgreSQL."""

    async def stores(self, *, chain: str | None) -> list[DirectoryStore]:
        """Return the directory's stores of one chain, or of all."""
        return [s for s in DIRECTORY if chain is None or s.chain == chain]


DIRECTORY = [
    DirectoryStore("coles", "7724", "Coles Carlton", "VIC", "3053"),
    DirectoryStore("woolworths", "12", "Woolworths Town Hall", "NSW", None),
]


def _app(uow: Uow, *, token: str | None = TOKEN) -> FastAPI:
    settings = ScraperSettings(
        ingest_token=SecretStr(token) if token else None, ingest_max_bytes=4096, ingest_max_rows=3
    )
    counters = ScraperCounters.register(CollectorRegistry())
    shop = FakeShop(
        directory={"fm": [StoreInfo("s1", "Store 1", None, None)]}, categories={"fm": [Category("dairy", 2)]}
    )
    policy = PlanPolicy(
        anchor_interval=timedelta(hours=24), member_check_interval=timedelta(days=7), member_sample_share=0.1
    )
    runs = ScrapeRuns(uow=uow, shop=shop, policy=policy, counters=counters)
    app = FastAPI()
    app.include_router(
        build_api(
            # The run listing reads PostgreSQL; these tests stay off those routes.
            queries=_Directory(Database(settings, Path("."))),
            runner=ScrapeRunner(runs=runs, clock=lambda: NOW, workers=1, poll_s=1.0),
            ingestor=Ingestor(uow=uow, counters=counters),
            settings=settings,
            clock=lambda: NOW,
        )
    )
    return app


@pytest.fixture
async def uow() -> Uow:
    return FakeUnitOfWork(InMemoryScraperRepository())


@pytest.fixture
async def client(uow: Uow) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(uow))
    async with httpx.AsyncClient(transport=transport, base_url="http://scraper") as client:
        yield client


BODY: dict[str, Any] = {"rows": [{"sku": "1", "price": 1.0}], "chain": "coles", "store_id": "1"}


async def test_the_store_directory_is_listed_by_chain_with_names_and_postcodes(
    client: httpx.AsyncClient,
) -> None:
    coles = (await client.get("/v1/stores", params={"chain": "coles"})).json()["stores"]
    assert coles == [
        {"chain": "coles", "store_id": "7724", "name": "Coles Carlton", "state": "VIC", "postcode": "3053"}
    ]
    every = (await client.get("/v1/stores")).json()["stores"]
    assert [(s["chain"], s["postcode"]) for s in every] == [("coles", "3053"), ("woolworths", None)]


async def test_ingest_needs_a_configured_token(uow: Uow) -> None:
    transport = httpx.ASGITransport(app=_app(uow, token=None))
    async with httpx.AsyncClient(transport=transport, base_url="http://scraper") as client:
        response = await client.post("/v1/observations", json=BODY, headers=AUTH)
    assert response.status_code == 503


async def test_ingest_requires_the_bearer_token(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/observations", json=BODY)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.post("/v1/observations", json=BODY, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


async def test_ingest_caps_the_body_and_the_rows(client: httpx.AsyncClient, uow: Uow) -> None:
    assert (await client.post("/v1/observations", content=b"x" * 5000, headers=AUTH)).status_code == 413
    rows = {**BODY, "rows": [{"sku": str(i), "price": 1.0} for i in range(4)]}
    assert (await client.post("/v1/observations", json=rows, headers=AUTH)).status_code == 413
    assert (await client.post("/v1/observations", content=b"{", headers=AUTH)).status_code == 422
    assert uow.published == []


async def test_ingest_answers_what_became_of_the_rows(client: httpx.AsyncClient, uow: Uow) -> None:
    ok = await client.post("/v1/observations", json=BODY, headers=AUTH)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"accepted": 1, "quarantined": 0, "duplicates": 0, "events": 1, "problems": []}
    [event] = uow.published_of(PricesScraped)
    assert event.payload.source == "ingest"
    assert event.payload.sightings()[0].observed_at == NOW, "observed when the route read the clock"

    future = {**BODY, "observed_at": (NOW + timedelta(hours=1)).isoformat()}
    refused = await client.post("/v1/observations", json=future, headers=AUTH)
    assert refused.status_code == 422
    assert refused.json() == {"detail": "observed_at is in the future"}


async def test_a_run_is_planned_at_the_clocks_time(client: httpx.AsyncClient, uow: Uow) -> None:
    response = await client.post("/v1/runs", json={"scope": "all", "day": 2})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert run_id.startswith("run-20261120T120000-")
    assert len(await uow.repo.pending_tasks(run_id=run_id)) == 2

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await client.post("/v1/runs", json={"as_of": later})).status_code == 422


async def test_a_run_of_a_chain_the_shop_does_not_have_is_refused_naming_the_chains_it_has(
    client: httpx.AsyncClient, uow: Uow
) -> None:
    response = await client.post("/v1/runs", json={"chains": ["fm", "nosuchchain"]})
    assert response.status_code == 404
    assert response.json()["detail"] == "no chain 'nosuchchain' at the shop; its chains: fm"
    assert uow.repo.runs == {}, "nothing planned, not even for the chain that exists"
