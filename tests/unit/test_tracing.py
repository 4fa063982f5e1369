"""Correlation through units of work, logs bound to events, and what /metrics adds."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import structlog
from fastapi.testclient import TestClient
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client.parser import text_string_to_metric_families

from bargains.domain.bargains import Policy
from bargains.handlers import build_router
from contracts import CODEC, topic, topic_for
from contracts.events import (
    BargainsChanged,
    PriceObservation,
    PricesScraped,
    ProductObserved,
    RescrapeRequested,
    StoreGroupChanged,
)
from contracts.events.v1 import PageRef, PricesScrapedPayload, RescrapeRequestedPayload
from grouping import service_layer as grouping_service_layer
from grouping.domain.regroup import RegroupMemory
from pricestream.trace_cli import correlation_candidates
from scraper.repository import ProductRow
from scraper.service_layer.staging import stage_prices
from servicekit.app import build_app
from servicekit.consuming import ConsumeGuard, ConsumerGroup, subscribe, subscribe_batch
from servicekit.kit import make_parts
from servicekit.metrics import Metrics
from servicekit.service import Service
from servicekit.settings import ServiceSettings
from servicekit.tracing import correlation_for
from tests.fakes.bargains import InMemoryBargainsRepository
from tests.fakes.grouping import POLICY, InMemoryGroupingRepository
from tests.fakes.scraper import InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _rescrape(store: str, correlation_id: UUID | None = None) -> RescrapeRequested:
    payload = RescrapeRequestedPayload(chain="c", store_id=store, reason="manual")
    return RescrapeRequested.new(producer="grouping", payload=payload, correlation_id=correlation_id)


def _prices(store: str, days_ago: float, price: int, correlation_id: UUID) -> PricesScraped:
    at = NOW - timedelta(days=days_ago)
    payload = PricesScrapedPayload(
        chain="c",
        store_id=store,
        source="ingest",
        page=PageRef(category="dairy", page=1),
        observations=(PriceObservation(sku="milk", price_cents=price, was_price_cents=None, observed_at=at),),
    )
    return PricesScraped.new(producer="scraper", payload=payload, correlation_id=correlation_id)


async def test_events_staged_while_handling_carry_the_claimed_events_correlation() -> None:
    uow = FakeUnitOfWork(object())
    cause = _rescrape("s1", correlation_id=uuid4())
    async with uow:
        await uow.claim([cause])
        uow.publish([_rescrape("s2"), _rescrape("s3")])
    assert {e.correlation_id for e in uow.published} == {cause.correlation_id}
    assert all(e.event_id != cause.correlation_id for e in uow.published), "ids stay their own"


async def test_a_batch_is_attributed_to_its_first_event_and_a_chosen_correlation_is_kept() -> None:
    uow = FakeUnitOfWork(object())
    first, second, chosen = uuid4(), uuid4(), uuid4()
    async with uow:
        await uow.claim([_rescrape("s1", first), _rescrape("s2", second)])
        uow.publish([_rescrape("s3"), _rescrape("s4", chosen)])
    assert [e.correlation_id for e in uow.published] == [first, chosen]


async def test_events_without_a_cause_share_the_first_ones_id_and_each_unit_of_work_starts_afresh() -> None:
    uow = FakeUnitOfWork(object())
    async with uow:
        uow.publish([_rescrape("s1"), _rescrape("s2")])
    async with uow:
        uow.publish([_rescrape("s3")])
    one, two, three = uow.published
    assert one.correlation_id == one.event_id == two.correlation_id
    assert three.correlation_id == three.event_id


async def test_a_scrape_runs_prices_and_products_carry_the_runs_correlation() -> None:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    async with uow:
        await stage_prices(
            uow,
            chain="c",
            store_id="s1",
            source="scrape",
            observations=[
                PriceObservation(sku="milk", price_cents=300, was_price_cents=None, observed_at=NOW)
            ],
            products=[ProductRow("milk", "Milk 2L", None, "2L", "dairy", None, None)],
            observed_at=NOW,
            run_id="run-20260302T120000-abcdef",
        )
    run = correlation_for("run-20260302T120000-abcdef")
    assert {type(e) for e in uow.published} == {PricesScraped, ProductObserved}
    assert {e.correlation_id for e in uow.published} == {run}
    assert correlation_candidates("run-20260302T120000-abcdef") == [run], "the trace finds a run by its id"
    assert correlation_candidates(str(run)) == [run]


async def test_a_bargain_carries_the_correlation_of_the_prices_that_made_it() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    run = correlation_for("run-x")
    broker = KafkaBroker()
    broker.include_router(
        build_router(uow=uow, clock=lambda: NOW, policy=Policy(), consumers=ConsumerGroup("bargains", 100))
    )
    month = [_prices("s1", day + 1 / 24, 400, uuid4()) for day in range(10, 0, -1)]
    async with TestKafkaBroker(broker) as test_broker:
        for event in [*month, _prices("s1", 1 / 24, 300, run)]:
            record = CODEC.encode(event)
            headers = {name: value.decode() for name, value in record.headers}
            await test_broker.publish(record.value, topic=topic_for(type(event)).name, headers=headers)
    announced = uow.published_of(BargainsChanged)
    assert announced, "the drop is a bargain"
    assert announced[-1].correlation_id == run


async def test_groups_formed_from_a_runs_prices_carry_the_runs_correlation() -> None:
    uow = FakeUnitOfWork(InMemoryGroupingRepository())
    run = correlation_for("run-y")
    policy = POLICY
    shelf = tuple(
        PriceObservation(sku=f"p{i:02d}", price_cents=100 + i, was_price_cents=None, observed_at=NOW)
        for i in range(60)
    )
    for store in ("s1", "s2", "s3"):
        batch = PricesScrapedPayload(chain="c", store_id=store, source="scrape", observations=shelf)
        async with uow:
            await grouping_service_layer.fold_prices(uow, [batch], now=NOW, policy=POLICY, correlation_id=run)
    async with uow:
        report = await grouping_service_layer.run_cycle(
            uow, now=NOW + timedelta(seconds=3), policy=policy, memory=RegroupMemory()
        )
    assert uow.published_of(StoreGroupChanged), report
    assert {e.correlation_id for e in uow.published} == {run}


def test_records_carry_event_and_correlation_ids_as_headers() -> None:
    event = _rescrape("s1", correlation_id=uuid4())
    headers = dict(CODEC.encode(event).headers)
    assert headers["event_id"] == str(event.event_id).encode()
    assert headers["correlation_id"] == str(event.correlation_id).encode()


async def test_logs_bind_the_event_and_correlation_ids_while_a_message_is_handled() -> None:
    guard = ConsumeGuard(metrics=Metrics(), group_id="test", max_attempts=1, backoff_s=0.0)
    broker = KafkaBroker(middlewares=[guard.middleware])
    bound: list[dict[str, object]] = []

    @subscribe(broker, topic("rescrapes.requested.v1"), group_id="test")
    async def on_rescrapes_requested(event: RescrapeRequested) -> None:
        bound.append(structlog.contextvars.get_contextvars())

    @subscribe_batch(broker, topic("prices.scraped.v1"), group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        bound.append(structlog.contextvars.get_contextvars())

    single = _rescrape("s1", correlation_id=uuid4())
    prices = _prices("s1", 1, 300, uuid4())
    async with TestKafkaBroker(broker) as test_broker:
        for event in (single, prices):
            record = CODEC.encode(event)
            headers = {name: value.decode() for name, value in record.headers}
            await test_broker.publish(record.value, topic=topic_for(type(event)).name, headers=headers)
    assert bound[0]["event_id"] == str(single.event_id)
    assert bound[0]["correlation_id"] == str(single.correlation_id)
    assert bound[1]["correlation_id"] == str(prices.correlation_id)
    assert "correlation_id" not in structlog.contextvars.get_contextvars(), "unbound once handled"


def test_metrics_add_http_requests_by_route_process_outbox_and_lag() -> None:
    settings = ServiceSettings(service_name="probe", health_timeout_s=0.2)
    broker, db, metrics = make_parts(settings, migrations=Path("."))
    client = TestClient(build_app(Service(settings, broker, db, metrics)))
    client.get("/health/live")
    client.get("/no/such/page")
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["pricestream_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/health/live", "200")] == 1
    assert requests[("<unmatched>", "404")] == 1, "unknown paths share one label"
    assert "pricestream_http_request_duration_seconds" in families
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= set(families)
    assert "pricestream_outbox_waiting" in families
    assert "pricestream_consumer_lag" in families
