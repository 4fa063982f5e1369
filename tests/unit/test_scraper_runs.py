"""Scrape runs in memory: the plan recorded page by page, pages staged, barcodes, resumes, the loop."""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import PricesScraped, ProductObserved
from contracts.events.v1 import StoreGroupChangedPayload
from scraper.domain.importers import RawRow
from scraper.domain.ingest import Rejected
from scraper.domain.planning import Category, PlanPolicy, StoreInfo, StoreRef, Task
from scraper.fetching import FetchStats
from scraper.repository import Run
from scraper.service_layer.housekeeping import Keep
from scraper.service_layer.runs import ScrapeRuns
from scraper.telemetry import ScraperCounters
from scraper.workers import ScrapeRunner, Tidier
from tests.fakes.scraper import FakeShop, InMemoryScraperRepository, PageKey
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = PlanPolicy(
    anchor_interval=timedelta(hours=24), member_check_interval=timedelta(days=7), member_sample_share=0.5
)
CHAIN = "fm"
STORES = ["s1", "s2", "s3", "s4"]
CATEGORIES = [Category("dairy", 2), Category("bakery", 1)]

Uow = FakeUnitOfWork[InMemoryScraperRepository]


def _listing(sku: str, price: float, **extra: object) -> RawRow:
    return {"sku": sku, "name": f"Product {sku}", "brand": "Acme", "size": "1kg", "price": price, **extra}


def _world() -> FakeShop:
    """Four stores, three pages each; every page lists two products of its own, one priced by store.

    Products `<category>-<page>-1` show a barcode on their detail page, `-2` ones have none.
    """
    listings: dict[PageKey, list[RawRow]] = {}
    barcodes: dict[tuple[str, str], str] = {}
    for number, store in enumerate(STORES, start=1):
        for category in CATEGORIES:
            for page in range(1, category.pages + 1):
                listings[(CHAIN, store, category.slug, page)] = [
                    _listing(f"{category.slug}-{page}-1", 1.5 + number),
                    _listing(f"{category.slug}-{page}-2", 2.25, was_price=3.0),
                ]
                barcodes[(CHAIN, f"{category.slug}-{page}-1")] = f"93000000{page}{len(category.slug):03}"
    return FakeShop(
        directory={CHAIN: [StoreInfo(s, f"Store {s}", "VIC", "3000") for s in STORES]},
        categories={CHAIN: CATEGORIES},
        listings=listings,
        barcodes=barcodes,
    )


def _runs(shop: FakeShop, uow: Uow | None = None) -> tuple[ScrapeRuns, Uow]:
    uow = uow or FakeUnitOfWork(InMemoryScraperRepository())
    counters = ScraperCounters.register(CollectorRegistry())
    return ScrapeRuns(uow=uow, shop=shop, policy=POLICY, counters=counters), uow


def _runner(runs: ScrapeRuns, *, clock_at: datetime = NOW, workers: int = 3) -> ScrapeRunner:
    return ScrapeRunner(
        runs=runs, clock=lambda: clock_at, workers=workers, poll_s=0.01, fetch_stats=FetchStats()
    )


def _published_prices(uow: Uow) -> dict[tuple[str, str, str], int]:
    prices: dict[tuple[str, str, str], int] = {}
    for event in uow.published_of(PricesScraped):
        for o in event.payload.sightings():
            key = (event.payload.chain, event.payload.store_id, o.sku)
            assert key not in prices, f"{key} published twice"
            prices[key] = o.price_cents
    return prices


def _truth(shop: FakeShop) -> dict[tuple[str, str, str], int]:
    return {
        (chain, store, str(listing["sku"])): round(float(listing["price"]) * 100)
        for (chain, store, _, _), listings in shop.listings.items()
        for listing in listings
    }


async def _group(uow: Uow, anchor: str, members: list[str], version: int = 1) -> None:
    group = StoreGroupChangedPayload(
        chain=CHAIN,
        group_id="g1",
        group_version=version,
        anchor_store_id=anchor,
        member_store_ids=tuple(members),
        reason="formed",
    )
    async with uow:
        await uow.repo.apply_group(group=group)


def _scraped_at(uow: Uow, when: dict[str, datetime]) -> None:
    for store, at in when.items():
        uow.repo.stores[StoreRef(CHAIN, store)].last_scraped_at = at


# --- planning a run -------------------------------------------------------------------


async def test_a_run_records_every_page_of_every_planned_store() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="plan", day=3, chains=(), as_of=None, now=NOW)

    assert run_id.startswith("run-20261120T120000-")
    tasks = await uow.repo.pending_tasks(run_id=run_id)
    assert len(tasks) == len(STORES) * 3, "every page of every category, at each new store"
    assert {t.reason for t in tasks} == {"discover"}
    assert uow.repo.stores[StoreRef(CHAIN, "s2")].name == "Store s2", "the store directory is synced"
    assert uow.repo.run_status(run_id) == "running"
    assert shop.page_fetches == {}, "planning fetches no page"


async def test_the_plan_takes_rescrapes_first_then_due_anchors_and_member_samples() -> None:
    runs, uow = _runs(_world())
    await runs.plan_run(scope="plan", day=0, chains=(), as_of=None, now=NOW)  # makes the stores known
    await _group(uow, "s1", ["s2", "s3", "s4"])
    _scraped_at(uow, {"s1": NOW - timedelta(hours=30), "s2": NOW - timedelta(days=9)})
    _scraped_at(uow, {"s3": NOW - timedelta(days=2), "s4": NOW - timedelta(hours=1)})
    async with uow:
        await uow.repo.request_rescrape(store=StoreRef(CHAIN, "s4"), reason="stale_anchor")

    run_id = await runs.plan_run(scope="plan", day=1, chains=(), as_of=None, now=NOW)

    tasks = await uow.repo.pending_tasks(run_id=run_id)
    by_store = {t.store_id: t.reason for t in tasks}
    assert by_store == {"s4": "rescrape", "s1": "anchor", "s2": "member_check"}, (
        "s1 is a due anchor; of the members, s2 is due a check, s3 was checked 2 days ago, s4 is re-scraped"
    )
    assert tasks[0].store_id == "s4", "re-scrapes are fetched first"
    assert await uow.repo.pending_rescrapes() == set(), "the run took the re-scrape on"


async def test_a_run_for_a_past_moment_is_planned_for_then() -> None:
    runs, uow = _runs(_world())
    await runs.plan_run(scope="plan", day=0, chains=(), as_of=None, now=NOW)
    await _group(uow, "s1", ["s2", "s3", "s4"])
    _scraped_at(uow, {s: NOW - timedelta(hours=1) for s in STORES})
    _scraped_at(uow, {"s1": NOW - timedelta(hours=30)})

    earlier = await runs.plan_run(scope="plan", day=1, chains=(), as_of=NOW - timedelta(hours=10), now=NOW)
    assert await uow.repo.pending_tasks(run_id=earlier) == [], "20 h after its last scrape: not due then"
    due = await runs.plan_run(scope="plan", day=1, chains=(), as_of=None, now=NOW)
    assert {t.store_id for t in await uow.repo.pending_tasks(run_id=due)} == {"s1"}


async def test_rescrapes_of_chains_the_shop_lacks_are_dropped_unless_chains_were_named() -> None:
    runs, uow = _runs(_world())
    gone, ours = StoreRef("gone", "9"), StoreRef(CHAIN, "s1")
    async with uow:
        await uow.repo.request_rescrape(store=gone, reason="stale_anchor")

    await runs.plan_run(scope="rescrape", day=None, chains=[CHAIN], as_of=None, now=NOW)
    assert await uow.repo.pending_rescrapes() == {gone}, "a run of named chains leaves other chains' requests"

    async with uow:
        await uow.repo.request_rescrape(store=ours, reason="health_check")
    run_id = await runs.plan_run(scope="rescrape", day=None, chains=(), as_of=None, now=NOW)
    assert await uow.repo.pending_rescrapes() == set(), "the shop does not sell for 'gone': dropped"
    assert {t.store_id for t in await uow.repo.pending_tasks(run_id=run_id)} == {"s1"}


async def test_stores_the_shop_does_not_list_are_not_planned_and_their_rescrapes_are_dropped() -> None:
    runs, uow = _runs(_world())
    await runs.plan_run(scope="plan", day=0, chains=(), as_of=None, now=NOW)
    await _group(uow, "s1", ["s2", "ghost"])  # "ghost" priced only through an ingested file
    async with uow:
        await uow.repo.request_rescrape(store=StoreRef(CHAIN, "ghost"), reason="health_check")

    run_id = await runs.plan_run(scope="all", day=1, chains=(), as_of=None, now=NOW)

    assert {t.store_id for t in await uow.repo.pending_tasks(run_id=run_id)} == set(STORES)
    assert await uow.repo.pending_rescrapes() == set(), "nothing to fetch for it, ever: dropped"


# --- scraping pages -----------------------------------------------------------------


async def test_a_full_scrape_publishes_exactly_the_shops_prices_each_page_once() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=3, chains=(), as_of=None, now=NOW)
    await _runner(runs).execute(run_id, asyncio.Event())

    assert uow.repo.run_status(run_id) == "finished"
    assert _published_prices(uow) == _truth(shop)
    assert set(shop.page_fetches.values()) == {1}
    assert set(shop.days) == {3}, "the run's day is asked of the shop"
    assert all(record.observations == 2 for record in uow.repo.tasks_of(run_id))
    first = uow.published_of(PricesScraped)[0].payload
    assert first.source == "scrape"
    assert first.run_id == run_id
    assert first.page is not None


async def test_only_new_or_changed_products_are_described_again() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    first = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(first, asyncio.Event())
    described = uow.published_of(ProductObserved)
    assert {e.payload.change for e in described} == {"new"}
    assert len(described) == 6, "six products, each described once though four stores list it"

    for store in STORES:
        shop.listings[(CHAIN, store, "bakery", 1)][0]["name"] = "Product bakery-1-1, now bigger"
    uow.published.clear()
    second = await runs.plan_run(scope="all", day=2, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(second, asyncio.Event())
    again = uow.published_of(ProductObserved)
    assert [(e.payload.sku, e.payload.change) for e in again] == [("bakery-1-1", "changed")]
    assert again[0].payload.name == "Product bakery-1-1, now bigger"
    assert len(uow.published_of(PricesScraped)) == len(STORES) * 3, "every page's prices go out again"


async def test_bad_listings_are_quarantined_and_the_page_is_still_done() -> None:
    shop = _world()
    shop.listings[(CHAIN, "s1", "bakery", 1)] += [
        _listing("neg", -1.0),
        {"name": "no sku", "price": 1.0},
        _listing("bad sku", 2.0),
    ]
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(run_id, asyncio.Event())

    assert [(q.source, q.reason) for q in uow.repo.quarantined] == [
        ("scrape", "negative price"),
        ("scrape", "missing sku"),
        ("scrape", "invalid sku 'bad sku'"),
    ]
    page = next(
        r for r in uow.repo.tasks_of(run_id) if (r.task.store_id, r.task.category) == ("s1", "bakery")
    )
    assert page.done
    assert page.observations == 2
    assert uow.repo.run_status(run_id) == "finished", "bad rows do not fail a run"


async def test_a_product_description_off_contract_is_quarantined_and_its_price_still_goes_out() -> None:
    shop = _world()
    shop.barcodes[(CHAIN, "bakery-1-2")] = "12"  # the detail page shows a code too short to be a barcode
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(run_id, asyncio.Event())

    [quarantined] = uow.repo.quarantined
    assert quarantined.reason.startswith("product description off contract: barcode")
    assert quarantined.raw["sku"] == "bakery-1-2"
    assert "bakery-1-2" not in {e.payload.sku for e in uow.published_of(ProductObserved)}
    assert _published_prices(uow) == _truth(shop)


async def test_a_barcode_is_fetched_once_per_product() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs, workers=8).execute(run_id, asyncio.Event())
    assert set(shop.barcode_fetches.values()) == {1}, "once each, though four stores' pages ask at once"
    assert len(shop.barcode_fetches) == 6
    barcodes = {e.payload.sku: e.payload.barcode for e in uow.published_of(ProductObserved)}
    assert barcodes["dairy-2-1"] == shop.barcodes[(CHAIN, "dairy-2-1")]
    assert barcodes["dairy-2-2"] is None

    again = await runs.plan_run(scope="all", day=2, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(again, asyncio.Event())
    assert sum(shop.barcode_fetches.values()) == 6, "the process remembers every answer, none too"

    restarted, _ = _runs(shop, uow)
    third = await restarted.plan_run(scope="all", day=3, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(restarted).execute(third, asyncio.Event())
    assert {sku for (_, sku), n in shop.barcode_fetches.items() if n == 2} == {
        "dairy-1-2",
        "dairy-2-2",
        "bakery-1-2",
    }, "after a restart, a barcode the database knows is not asked again; a missing one is"


async def test_pages_are_observed_when_fetched_or_at_the_moment_their_run_stands_for() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    live = await runs.plan_run(scope="all", day=None, chains=[CHAIN], as_of=None, now=NOW)
    later = NOW + timedelta(minutes=3)
    await _runner(runs, clock_at=later).execute(live, asyncio.Event())
    assert {o.observed_at for e in uow.published_of(PricesScraped) for o in e.payload.sightings()} == {later}
    assert uow.repo.stores[StoreRef(CHAIN, "s1")].last_scraped_at == later

    uow.published.clear()
    past = NOW - timedelta(days=2)
    replay = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=past, now=NOW)
    await _runner(runs, clock_at=later).execute(replay, asyncio.Event())
    assert {o.observed_at for e in uow.published_of(PricesScraped) for o in e.payload.sightings()} == {past}
    assert uow.repo.stores[StoreRef(CHAIN, "s1")].last_scraped_at == later, "a replay never moves it back"


# --- failures, stops and resumes ------------------------------------------------------


async def test_a_page_done_is_not_fetched_again_after_a_resume() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=4, chains=[CHAIN], as_of=None, now=NOW)
    stopping = asyncio.Event()
    shop.on_page = lambda key: stopping.set() if sum(shop.page_fetches.values()) >= 5 else None

    await _runner(runs, workers=2).execute(run_id, stopping)
    done = sum(record.done for record in uow.repo.tasks_of(run_id))
    assert done == sum(shop.page_fetches.values()), "pages in flight at the stop were finished"
    assert 0 < done < len(STORES) * 3
    assert uow.repo.run_status(run_id) == "running", "a paused run is left to resume"

    resumed, _ = _runs(shop, uow)
    await _runner(resumed).execute(run_id, asyncio.Event())
    assert uow.repo.run_status(run_id) == "finished"
    assert set(shop.page_fetches.values()) == {1}, "no page fetched twice"
    assert _published_prices(uow) == _truth(shop), "no observation missing, none twice"


async def test_failed_pages_fail_the_run_and_a_resume_fetches_only_them() -> None:
    shop = _world()
    broken = (CHAIN, "s2", "dairy", 2)
    shop.fail_pages.add(broken)
    runs, uow = _runs(shop)
    run_id = await runs.plan_run(scope="all", day=5, chains=[CHAIN], as_of=None, now=NOW)
    await _runner(runs).execute(run_id, asyncio.Event())

    assert uow.repo.run_status(run_id) == "failed"
    assert uow.repo.runs[run_id].error == "1 pages failed; last: GET fm/s2/dairy/2 failed 8 times (last: 503)"
    assert [(t.store_id, t.category, t.page) for t in await uow.repo.pending_tasks(run_id=run_id)] == [
        ("s2", "dairy", 2)
    ]

    shop.fail_pages.clear()
    await _runner(runs).execute(run_id, asyncio.Event())
    assert uow.repo.run_status(run_id) == "finished"
    assert shop.page_fetches[broken] == 2
    assert sum(shop.page_fetches.values()) == len(STORES) * 3 + 1


# --- the background loop --------------------------------------------------------------


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_the_loop_resumes_unfinished_runs_then_serves_rescrapes() -> None:
    shop = _world()
    runs, uow = _runs(shop)
    left = await runs.plan_run(scope="all", day=1, chains=[CHAIN], as_of=None, now=NOW)
    runner = _runner(runs)
    stopping = asyncio.Event()
    loop = asyncio.create_task(runner.run(stopping))
    try:
        await _until(lambda: uow.repo.run_status(left) == "finished")
        async with uow:
            await uow.repo.request_rescrape(store=StoreRef(CHAIN, "s3"), reason="stale_anchor")
        await _until(
            lambda: any(r.run.scope == "rescrape" and r.status == "finished" for r in uow.repo.runs.values())
        )
    finally:
        stopping.set()
        await loop
    [rescrape] = [r.run.run_id for r in uow.repo.runs.values() if r.run.scope == "rescrape"]
    assert {r.task.store_id for r in uow.repo.tasks_of(rescrape)} == {"s3"}


async def test_the_loop_plans_a_run_on_schedule() -> None:
    runs, uow = _runs(_world())
    runner = ScrapeRunner(runs=runs, clock=lambda: NOW, workers=2, poll_s=0.01, auto_interval_s=0.02)
    stopping = asyncio.Event()
    loop = asyncio.create_task(runner.run(stopping))
    try:
        await _until(lambda: any(r.status == "finished" for r in uow.repo.runs.values()))
    finally:
        stopping.set()
        await loop
    assert next(iter(uow.repo.runs.values())).run.scope == "plan"


# --- tidying ----------------------------------------------------------------------------


async def test_runs_long_ended_and_old_quarantined_rows_are_forgotten_and_running_ones_kept() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    async with uow:
        for run_id in ("old", "recent", "open"):
            run, task = Run(run_id, "plan", None, None), Task(run_id, CHAIN, "s1", "dairy", 1, "full")
            await uow.repo.create_run(run=run, tasks=[task])
        await uow.repo.finish_run(run_id="old", status="finished", error=None)
        await uow.repo.finish_run(run_id="recent", status="failed", error="host paused")
        await uow.repo.quarantine(source="ingest", rejected=[Rejected("no price", {"sku": "a"})] * 2)
    now = datetime.now(UTC)
    uow.repo.runs["old"].finished_at = now - timedelta(days=31)
    uow.repo.quarantined[0] = replace(uow.repo.quarantined[0], received_at=now - timedelta(days=91))
    keep = Keep(runs=timedelta(days=30), quarantine=timedelta(days=90))
    tidier = Tidier(uow=uow, clock=lambda: now, keep=keep, every_s=3600)
    assert await tidier.tidy_once() == (1, 1)
    # A run still going is never forgotten, however old: it resumes after a restart.
    assert list(uow.repo.runs) == ["recent", "open"]
    assert [task.run_id for task in uow.repo.tasks] == ["recent", "open"]
    assert len(uow.repo.quarantined) == 1
    assert await tidier.tidy_once() == (0, 0)
