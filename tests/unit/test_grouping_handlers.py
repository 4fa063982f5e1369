"""Grouping's handler and cycle loop on fakes: FastStream's test broker, a fake unit of work."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from contracts import CODEC, topic
from contracts.events import PriceObservation, PricesScraped, StoreGroupChanged
from contracts.events.v1 import PricesScrapedPayload
from grouping.handlers import build_router
from grouping.queries import Counts
from grouping.workers import CYCLE_LOCK, GroupingGauges, GroupingWorker
from servicekit.consuming import ConsumeGuard, ConsumerGroup
from servicekit.metrics import Metrics
from tests.fakes.grouping import POLICY, InMemoryGroupingRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

PRICES = topic("prices.scraped.v1")
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _scraped(store: str, products: int = 60) -> PricesScraped:
    observations = tuple(
        PriceObservation(sku=f"p{i:02d}", price_cents=100 + i, observed_at=NOW - timedelta(minutes=5))
        for i in range(products)
    )
    payload = PricesScrapedPayload(chain="c", store_id=store, source="scrape", observations=observations)
    return PricesScraped.new(producer="scraper", payload=payload)


async def test_scraped_prices_are_folded_in_once_however_often_they_arrive() -> None:
    repo = InMemoryGroupingRepository()
    uow = FakeUnitOfWork(repo)
    guard = ConsumeGuard(metrics=Metrics(), group_id="grouping", max_attempts=1, backoff_s=0.0)
    broker = KafkaBroker(middlewares=[guard.middleware])
    broker.include_router(
        build_router(uow=uow, clock=lambda: NOW, consumers=ConsumerGroup("grouping", 10), policy=POLICY)
    )
    first, second = _scraped("s1", products=3), _scraped("s2", products=2)
    records = [CODEC.encode(event) for event in (first, second, first)]
    headers = {k: v.decode() for k, v in records[0].headers}

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(*(r.value for r in records), topic=PRICES.name, headers=headers)
        await test_broker.publish(records[1].value, topic=PRICES.name, headers=headers)  # delivered again

    assert {store: row.observed for (_, store), row in uow.repo.stores.items()} == {"s1": 3, "s2": 2}
    assert uow.repo.held("c", "s1") == {"p00": 100, "p01": 101, "p02": 102}
    assert {row.last_received_at for row in uow.repo.stores.values()} == {NOW}, "received at the clock's time"
    assert uow.claimed == {first.event_id, second.event_id}
    assert uow.commits == 2


async def _counts() -> Counts:
    return Counts(
        stores=2,
        stores_unplaced=0,
        groups=1,
        observations_received=120,
        prices_held=60,
        prices_answerable=120,
    )


def _worker(uow: FakeUnitOfWork[InMemoryGroupingRepository], registry: CollectorRegistry) -> GroupingWorker:
    return GroupingWorker(
        uow=uow,
        counts=_counts,
        gauges=GroupingGauges.register(registry),
        policy=POLICY,
        every_s=0.01,
        clock=lambda: NOW,
    )


async def _two_stores_alike() -> FakeUnitOfWork[InMemoryGroupingRepository]:
    uow = FakeUnitOfWork(InMemoryGroupingRepository())
    async with uow:
        batches = [_scraped(store).payload for store in ("s1", "s2")]
        await uow.repo.upsert_prices(
            batches=batches, fresh_since=POLICY.fresh_since(NOW), anchor_lag=POLICY.anchor_lag
        )
        await uow.repo.note_store_prices(batches=batches, received_at=NOW - timedelta(minutes=1))
    return uow


async def test_a_cycle_runs_under_the_lock_reads_the_clock_and_recounts_the_gauges() -> None:
    uow = await _two_stores_alike()
    registry = CollectorRegistry()
    worker = _worker(uow, registry)
    worker.memory.first_seen["c"] = NOW - timedelta(minutes=1)

    report = await worker.tick()

    assert report.formed == 1
    assert [e.payload.reason for e in uow.published_of(StoreGroupChanged)] == ["formed"]
    assert worker.memory.regrouped_at == {"c": NOW}
    assert registry.get_sample_value("grouping_groups") == 1
    assert registry.get_sample_value("grouping_prices_answerable") == 120


async def test_the_gauges_are_recounted_after_a_change_at_most_once_a_period() -> None:
    uow = await _two_stores_alike()
    now = [NOW]
    recounts: list[datetime] = []

    async def counts() -> Counts:
        recounts.append(now[0])
        return await _counts()

    worker = GroupingWorker(
        uow=uow,
        counts=counts,
        gauges=GroupingGauges.register(CollectorRegistry()),
        policy=POLICY,
        every_s=0.01,
        clock=lambda: now[0],
        recount_every=timedelta(seconds=30),
    )
    worker.memory.first_seen["c"] = NOW - timedelta(minutes=1)

    assert (await worker.tick()).formed == 1  # a change, and the first cycle: counted
    worker.recount_due = True  # as if the next cycles changed groups again
    now[0] = NOW + timedelta(seconds=10)
    await worker.tick()
    assert recounts == [NOW], "a change within the period waits"
    now[0] = NOW + timedelta(seconds=31)
    await worker.tick()
    now[0] = NOW + timedelta(seconds=40)
    await worker.tick()
    assert recounts == [NOW, NOW + timedelta(seconds=31)], "then counted once, and not again unchanged"


async def test_a_cycle_is_skipped_while_another_replica_holds_the_lock() -> None:
    uow = await _two_stores_alike()
    uow.locked_by_others.add(CYCLE_LOCK)
    registry = CollectorRegistry()
    worker = _worker(uow, registry)

    report = await worker.tick()

    assert not report.changed()
    assert uow.published == []
    assert await uow.repo.groups(chain="c") == {}
    assert worker.memory.regrouped_at == {}
    assert registry.get_sample_value("grouping_groups") == 0


async def test_the_loop_survives_a_failing_cycle_and_stops_when_asked() -> None:
    uow = await _two_stores_alike()
    worker = _worker(uow, CollectorRegistry())
    calls = []

    async def failing() -> Counts:
        calls.append(1)
        raise RuntimeError("the database went away")

    worker.counts = failing
    worker.memory.first_seen["c"] = NOW - timedelta(minutes=1)
    stopping = asyncio.Event()
    ticks: list[datetime] = []
    second_tick = asyncio.Event()

    def clock() -> datetime:
        ticks.append(NOW)
        if len(ticks) == 2:
            second_tick.set()
        return NOW

    worker.clock = clock
    loop = asyncio.create_task(worker.run(stopping))
    await asyncio.wait_for(second_tick.wait(), timeout=5)
    stopping.set()
    await asyncio.wait_for(loop, timeout=5)
    assert len(calls) >= 2, "the first cycle changed something and failed recounting: the next one retried"
    assert uow.commits >= 3
