"""The Coles and Woolworths adapters over fake sites: requests of the real shape, and every defence.

Each defence ends alike: a SiteDefenceError naming it, the host paused, the metric labelled
with the chain and the defence, a log line, and the page not staged (a resume fetches it).
"""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from contracts.events import PricesScraped
from scraper.chains.base import ChainRouter
from scraper.chains.coles import ColesAdapter
from scraper.chains.woolworths import WoolworthsAdapter
from scraper.domain.planning import Category, PlanPolicy
from scraper.fetching import SiteDefenceError
from scraper.service_layer.runs import ScrapeRuns
from scraper.telemetry import ScraperCounters
from scraper.workers import ScrapeRunner
from tests.fakes.chain_sites import FAST, ColesSite, WoolworthsSite, fetcher, fixture_text, html, router
from tests.fakes.scraper import InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

COLES = "https://coles.test"
WOOLWORTHS = "https://woolworths.test"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _coles(site: ColesSite) -> tuple[ChainRouter, ScraperCounters]:
    fetch = fetcher(site)
    return router("coles", ColesAdapter(fetch, COLES), fetch)


def _woolworths(site: WoolworthsSite) -> tuple[ChainRouter, ScraperCounters]:
    fetch = fetcher(site)
    return router("woolworths", WoolworthsAdapter(fetch, WOOLWORTHS), fetch)


def _tripped(counters: ScraperCounters, chain: str, defence: str) -> float:
    return float(counters.defences.labels(chain, defence)._value.get())


# --- Coles ------------------------------------------------------------------------------


async def test_coles_stores_categories_pages_and_barcodes() -> None:
    site = ColesSite()
    shop, _ = _coles(site)
    assert [s.store_id for s in await shop.stores("coles")] == ["7724", "0584", "0311"]
    assert await shop.categories("coles") == [
        Category("dairy-eggs-fridge", 2),
        Category("fruit-vegetables", 1),
        Category("seasonal-range", 0),
    ]
    menu = json.loads(site.requests[-1].content)
    assert menu["variables"]["storeId"] == "COL:7724", "the tree as the first store sees it"

    rows = await shop.page("coles", "0584", "dairy-eggs-fridge", 2, None)
    assert [row["sku"] for row in rows] == [4420183, 6610071]
    data = site.data_requests()[-1]
    assert data.url.path == "/_next/data/20240618.01_v4.12.0/en/browse/dairy-eggs-fridge.json"
    assert dict(data.url.params) == {"slug": "dairy-eggs-fridge", "page": "2"}
    assert data.headers["cookie"] == "fulfillmentStoreId=0584", "the store is chosen per request"

    await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)
    assert await shop.barcode("coles", "8150288") == "9300633603201"
    assert site.data_requests()[-1].url.path.endswith("/en/product/coles-full-cream-milk-3l-8150288.json")
    assert [r.url.path for r in site.requests].count("/") == 1, "the build id is read once"


async def test_a_changed_build_id_is_read_again_from_the_home_page() -> None:
    site = ColesSite()
    shop, counters = _coles(site)
    await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)
    site.build = "20240701.02_v4.13.0"  # a deploy

    rows = await shop.page("coles", "7724", "dairy-eggs-fridge", 2, None)

    assert len(rows) == 2
    assert [r.url.path.split("/")[3] for r in site.data_requests()] == [
        "20240618.01_v4.12.0",
        "20240618.01_v4.12.0",
        "20240701.02_v4.13.0",
    ]
    assert _tripped(counters, "coles", "build_id") == 0


Misbehaviour = Callable[[httpx.Request], httpx.Response | None]

COLES_DEFENCES: list[tuple[str, Misbehaviour, str]] = [
    ("challenge", lambda r: html(fixture_text("coles", "challenge.html")), "where JSON was due"),
    ("forbidden", lambda r: httpx.Response(403, text="Access denied"), "403 Forbidden"),
    ("rate_limited", lambda r: httpx.Response(429, headers={"Retry-After": "0"}), "still 429"),
    (
        "empty_page",
        lambda r: httpx.Response(200, text=fixture_text("coles", "browse-silently-empty.json")),
        "lists no products where the category says 50",
    ),
    (
        "schema_drift",
        lambda r: httpx.Response(200, text=fixture_text("coles", "browse-renamed-field.json")),
        "has no field 'pricing'",
    ),
]


@pytest.mark.parametrize(
    ("defence", "misbehave", "message"), COLES_DEFENCES, ids=[d[0] for d in COLES_DEFENCES]
)
async def test_each_coles_defence_fails_clearly_pauses_the_host_counts_and_logs(
    defence: str, misbehave: Misbehaviour, message: str
) -> None:
    site = ColesSite()
    shop, counters = _coles(site)
    site.misbehave = misbehave
    with capture_logs() as logs, pytest.raises(SiteDefenceError, match=message) as caught:
        await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)

    assert caught.value.kind == defence
    assert _tripped(counters, "coles", defence) == 1
    assert [(e["event"], e["chain"], e["defence"], e["host"]) for e in logs if e["log_level"] == "warning"][
        -1
    ] == ("site defence tripped, host paused", "coles", defence, "coles.test")
    tries = len(site.data_requests())
    assert tries == (3 if defence == "rate_limited" else 1), "a defended site is not hammered"

    site.misbehave = lambda request: None
    refused_at = site.arrivals[-1]
    await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)
    assert site.arrivals[-1] - refused_at >= FAST.pause_s, "the next request waited for the host's pause"


async def test_a_build_id_that_stays_gone_is_a_defence() -> None:
    site = ColesSite()
    shop, counters = _coles(site)
    await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)
    site.misbehave = lambda request: httpx.Response(404, text="gone")

    with pytest.raises(SiteDefenceError, match="answered 404 and the home page still names it") as caught:
        await shop.page("coles", "7724", "dairy-eggs-fridge", 2, None)

    assert caught.value.kind == "build_id"
    assert _tripped(counters, "coles", "build_id") == 1
    assert [r.url.path for r in site.requests].count("/") == 2, "the home page was read once more, not again"


async def test_a_challenge_instead_of_the_home_page_is_a_defence() -> None:
    site = ColesSite()
    shop, counters = _coles(site)
    original = site.__call__

    def challenged(request: httpx.Request) -> httpx.Response:
        return html(fixture_text("coles", "challenge.html")) if request.url.path == "/" else original(request)

    shop.fetcher.client = httpx.AsyncClient(transport=httpx.MockTransport(challenged))
    with pytest.raises(SiteDefenceError, match="no __NEXT_DATA__"):
        await shop.page("coles", "7724", "dairy-eggs-fridge", 1, None)
    assert _tripped(counters, "coles", "challenge") == 1


# --- Woolworths -------------------------------------------------------------------------


async def test_woolworths_chooses_each_store_once_and_sends_its_session_with_every_browse() -> None:
    site = WoolworthsSite()
    shop, _ = _woolworths(site)
    assert [s.store_id for s in await shop.stores("woolworths")] == ["1234", "3370"]
    assert await shop.categories("woolworths") == [
        Category("dairy-eggs-fridge", 2),
        Category("fruit-veg", 1),
        Category("seasonal", 0),
    ]
    await asyncio.gather(
        shop.page("woolworths", "1234", "dairy-eggs-fridge", 1, None),
        shop.page("woolworths", "3370", "dairy-eggs-fridge", 1, None),
        shop.page("woolworths", "1234", "dairy-eggs-fridge", 2, None),
    )
    fulfilments = [json.loads(r.content) for r in site.requests if r.url.path == "/api/v3/ui/fulfilment"]
    assert sorted(f["fulfilmentStoreId"] for f in fulfilments) == [1234, 3370], (
        "one fulfilment call per store"
    )
    assert sorted((store, body["pageNumber"]) for store, body in site.browsed) == [
        ("1234", 1),
        ("1234", 2),
        ("3370", 1),
    ]
    body = site.browsed[0][1]
    assert (body["categoryId"], body["pageSize"], body["url"]) == (
        "1_6E4F4E4",
        36,
        "/shop/browse/dairy-eggs-fridge",
    )
    browse = next(r for r in site.requests if r.url.path == "/apis/ui/browse/category")
    assert "bm_sz=abc" in browse.headers["cookie"], "the home page's session goes along"

    assert await shop.barcode("woolworths", "312877") == "9310036104531"


async def test_a_tree_without_counts_is_counted_from_each_first_page() -> None:
    site = WoolworthsSite(product_counts=False)
    shop, _ = _woolworths(site)
    assert await shop.categories("woolworths") == [
        Category("dairy-eggs-fridge", 2),
        Category("fruit-veg", 1),
        Category("seasonal", 0),
    ]


async def test_a_resumed_run_reads_the_tree_before_its_first_page() -> None:
    site = WoolworthsSite()
    shop, _ = _woolworths(site)
    rows = await shop.page("woolworths", "1234", "fruit-veg", 1, None)
    assert len(rows) == 4


@pytest.mark.parametrize(
    ("defence", "misbehave"),
    [
        ("challenge", lambda r: html(fixture_text("coles", "challenge.html"))),
        (
            "schema_drift",
            lambda r: httpx.Response(200, text=fixture_text("woolworths", "browse-renamed-field.json")),
        ),
        (
            "empty_page",
            lambda r: httpx.Response(200, text=fixture_text("woolworths", "browse-silently-empty.json")),
        ),
        ("forbidden", lambda r: httpx.Response(403)),
    ],
)
async def test_woolworths_defences(defence: str, misbehave: Misbehaviour) -> None:
    site = WoolworthsSite()
    shop, counters = _woolworths(site)
    site.misbehave = misbehave
    with pytest.raises(SiteDefenceError) as caught:
        await shop.page("woolworths", "1234", "dairy-eggs-fridge", 1, None)
    assert caught.value.kind == defence
    assert _tripped(counters, "woolworths", defence) == 1


# --- a run over a defended site ---------------------------------------------------------


async def test_a_run_publishes_the_real_labels_and_never_a_refused_page() -> None:
    site = ColesSite()
    fetch = fetcher(site)
    shop, counters = router("coles", ColesAdapter(fetch, COLES), fetch)
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    policy = PlanPolicy(timedelta(hours=24), timedelta(days=7), 0.5)
    runs = ScrapeRuns(
        uow=uow, shop=shop, policy=policy, counters=ScraperCounters.register(CollectorRegistry())
    )
    refused = ("0584", "2")
    site.misbehave = lambda r: (
        html(fixture_text("coles", "challenge.html"))
        if (r.headers.get("cookie", "=").split("=")[1], r.url.params.get("page")) == refused
        else None
    )

    run_id = await runs.plan_run(scope="all", day=None, chains=["coles"], as_of=None, now=NOW)
    runner = ScrapeRunner(runs=runs, clock=lambda: NOW, workers=2, poll_s=0.01)
    await runner.execute(run_id, asyncio.Event())

    assert uow.repo.run_status(run_id) == "failed"
    pages = {
        (e.payload.store_id, e.payload.page.category, e.payload.page.page)
        for e in uow.published_of(PricesScraped)
        if e.payload.page
    }
    assert ("0584", "dairy-eggs-fridge", 2) not in pages
    assert ("0584", "dairy-eggs-fridge", 1) in pages
    assert ("7724", "dairy-eggs-fridge", 2) in pages
    assert _tripped(counters, "coles", "challenge") == 1
    observations = {
        o.sku: o
        for e in uow.published_of(PricesScraped)
        if e.payload.store_id == "7724"
        for o in e.payload.sightings()
    }
    assert observations["5561722"].multibuy is not None
    assert observations["7893303"].member_price_cents == 450
    assert observations["2510017"].sold_by == "kg"
    assert observations["2349581"].was_price_cents == 1000
    reasons = {q.reason for q in uow.repo.quarantined}
    assert "price only 'from' a range (From $3.50), not a shelf price" in reasons

    site.misbehave = lambda request: None
    await runner.execute(run_id, asyncio.Event())
    assert uow.repo.run_status(run_id) == "finished"
