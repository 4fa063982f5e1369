"""The scraper's subscriptions on FastStream's in-memory broker: group changes and re-scrape requests."""

from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from contracts import CODEC, Event, topic_for
from contracts.events import RescrapeRequested, StoreGroupChanged
from contracts.events.v1 import RescrapeRequestedPayload, StoreGroupChangedPayload
from scraper.domain.planning import Category, PlanPolicy, StoreInfo, StoreRef
from scraper.handlers import build_router
from scraper.service_layer.runs import ScrapeRuns
from scraper.telemetry import ScraperCounters
from servicekit.consuming import ConsumerGroup
from tests.fakes.scraper import FakeShop, InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CHAIN = "fm"
Uow = FakeUnitOfWork[InMemoryScraperRepository]


def _group(version: int, anchor: str, members: list[str], reason: str = "formed") -> StoreGroupChanged:
    payload = StoreGroupChangedPayload.model_validate(
        {
            "chain": CHAIN,
            "group_id": "g1",
            "group_version": version,
            "anchor_store_id": anchor,
            "member_store_ids": tuple(members),
            "reason": reason,
        }
    )
    return StoreGroupChanged.new(producer="grouping", payload=payload)


def _rescrape(store_id: str) -> RescrapeRequested:
    payload = RescrapeRequestedPayload(chain=CHAIN, store_id=store_id, reason="stale_anchor")
    return RescrapeRequested.new(producer="grouping", payload=payload)


async def _deliver(uow: Uow, *events: Event) -> None:
    """Deliver events, in order, to the scraper's handlers."""
    broker = KafkaBroker()
    broker.include_router(build_router(uow=uow, consumers=ConsumerGroup("scraper")))
    async with TestKafkaBroker(broker) as test_broker:
        for event in events:
            record = CODEC.encode(event)
            headers = {name: value.decode() for name, value in record.headers}
            await test_broker.publish(
                record.value, topic=topic_for(type(event)).name, key=record.key, headers=headers
            )


def _roles(uow: Uow) -> dict[str, tuple[str, str | None]]:
    return {ref.store_id: (s.role, s.group_id) for ref, s in sorted(uow.repo.stores.items(), key=str)}


async def _plan(uow: Uow) -> dict[str, str]:
    """Plan a routine run over a shop of six stores; return each planned store's reason."""
    shop = FakeShop(
        directory={CHAIN: [StoreInfo(f"s{i}", f"Store {i}", None, None) for i in range(1, 7)]},
        categories={CHAIN: [Category("dairy", 1)]},
    )
    policy = PlanPolicy(
        anchor_interval=timedelta(hours=24), member_check_interval=timedelta(days=7), member_sample_share=0.5
    )
    runs = ScrapeRuns(
        uow=uow, shop=shop, policy=policy, counters=ScraperCounters.register(CollectorRegistry())
    )
    run_id = await runs.plan_run(scope="plan", day=None, chains=(), as_of=None, now=NOW)
    return {t.store_id: t.reason for t in await uow.repo.pending_tasks(run_id=run_id)}


async def test_a_group_change_shapes_the_plan() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    await _deliver(uow, _group(1, "s1", ["s2", "s3", "s4"]))
    assert _roles(uow) == {
        "s1": ("anchor", "g1"),
        "s2": ("member", "g1"),
        "s3": ("member", "g1"),
        "s4": ("member", "g1"),
    }, "stores the scraper did not know yet are recorded with their role"

    planned = await _plan(uow)
    assert planned == {
        "s1": "anchor",
        "s2": "member_check",
        "s3": "member_check",
        "s5": "discover",
        "s6": "discover",
    }, "the anchor is scraped, half its members sampled (ceil(3 * 0.5) = 2), ungrouped stores discovered"


async def test_an_older_group_version_is_ignored_and_stores_that_left_are_unplaced() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    await _deliver(uow, _group(2, "s1", ["s2", "s3"]), _group(1, "s4", ["s5"]))
    assert _roles(uow) == {"s1": ("anchor", "g1"), "s2": ("member", "g1"), "s3": ("member", "g1")}

    await _deliver(uow, _group(3, "s2", ["s1"], reason="split"))
    assert _roles(uow) == {"s1": ("member", "g1"), "s2": ("anchor", "g1"), "s3": ("unknown", None)}

    await _deliver(uow, _group(4, "s2", [], reason="dissolved"))
    assert {role for role, _ in _roles(uow).values()} == {"unknown"}
    assert {group for _, group in _roles(uow).values()} == {None}


async def test_a_rescrape_request_is_queued_and_comes_first_in_the_next_run() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    await _deliver(uow, _group(1, "s1", ["s2", "s3", "s4"]), _rescrape("s4"), _rescrape("s4"))
    assert uow.repo.rescrapes == {StoreRef(CHAIN, "s4"): "stale_anchor"}
    planned = await _plan(uow)
    assert next(iter(planned.items())) == ("s4", "rescrape")


async def test_a_redelivered_event_is_handled_once() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    request = _rescrape("s4")
    await _deliver(uow, request)
    await _plan(uow)  # the run takes the request on
    assert uow.repo.rescrapes == {}

    await _deliver(uow, request)
    assert uow.repo.rescrapes == {}, "the same request delivered again does not queue the store again"
    assert len(uow.claimed) == 1
