"""The bargains subscriptions and expiry loop, on FastStream's in-memory broker and an in-memory store."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from bargains.domain.bargains import Policy
from bargains.handlers import build_router
from bargains.workers import Expirer
from contracts import CODEC, Event, topic_for
from contracts.events import (
    BargainsChanged,
    PriceObservation,
    PricesScraped,
    ProductObserved,
    StoreGroupChanged,
    SubstitutionsChanged,
)
from contracts.events.v1 import (
    PageRef,
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
    Substitute,
    SubstitutionsChangedPayload,
)
from servicekit.consuming import ConsumerGroup
from tests.fakes.bargains import InMemoryBargainsRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
Uow = FakeUnitOfWork[InMemoryBargainsRepository]


def _prices(chain: str, store: str, days_ago: float, sku: str, price: int) -> PricesScraped:
    at = NOW - timedelta(days=days_ago)
    observation = PriceObservation(sku=sku, price_cents=price, was_price_cents=None, observed_at=at)
    payload = PricesScrapedPayload(
        chain=chain,
        store_id=store,
        source="ingest",
        page=PageRef(category="dairy", page=1),
        observations=(observation,),
    )
    return PricesScraped.new(producer="scraper", payload=payload)


def _month_then_drop(chain: str, store: str, sku: str = "milk") -> list[PricesScraped]:
    """Ten days at 400 then 300 an hour ago: a discount."""
    return [_prices(chain, store, day + 1 / 24, sku, 400) for day in range(10, 0, -1)] + [
        _prices(chain, store, 1 / 24, sku, 300)
    ]


async def _deliver(uow: Uow, *events: Event, now: datetime = NOW) -> None:
    """Publish events, as their producers encode them, to the bargains handlers."""
    broker = KafkaBroker()
    router = build_router(
        uow=uow, clock=lambda: now, policy=Policy(), consumers=ConsumerGroup("bargains", 100)
    )
    broker.include_router(router)
    async with TestKafkaBroker(broker) as test_broker:
        for event in events:
            record = CODEC.encode(event)
            headers = {name: value.decode() for name, value in record.headers}
            await test_broker.publish(record.value, topic=topic_for(type(event)).name, headers=headers)


def _announced(uow: Uow) -> list[tuple[str, str]]:
    return [
        (change.change, change.bargain.bargain_id)
        for event in uow.published_of(BargainsChanged)
        for change in event.payload.changes
    ]


async def test_prices_become_a_bargain_and_its_announcement() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    await _deliver(uow, *_month_then_drop("c", "s1"))

    assert set(uow.repo.bargains) == {"discount:c:s1:milk"}
    assert _announced(uow) == [("appeared", "discount:c:s1:milk")]
    assert uow.commits == 11


async def test_a_duplicate_event_is_counted_once() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    events = _month_then_drop("c", "s1")
    await _deliver(uow, *events, events[-1], events[0])

    assert {key[3]: n for key, n in uow.repo.price_counts.items() if n} == {300: 1}
    assert len(uow.repo.history["c", "s1", "milk"]) == 2
    assert _announced(uow) == [("appeared", "discount:c:s1:milk")]
    assert len(uow.claimed) == 11


async def test_the_handlers_judge_at_the_clocks_time() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    # A week later the price an hour before NOW is stale: no bargain rests on it.
    await _deliver(uow, *_month_then_drop("c", "s1"), now=NOW + timedelta(days=7))

    assert not uow.repo.bargains
    assert len(uow.repo.history["c", "s1", "milk"]) == 2


async def test_a_group_change_hands_a_members_bargains_to_its_anchor() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    group = StoreGroupChangedPayload(
        chain="c",
        group_id="g1",
        group_version=1,
        anchor_store_id="s1",
        member_store_ids=("m1",),
        reason="formed",
    )
    await _deliver(
        uow,
        *_month_then_drop("c", "s1"),
        *_month_then_drop("c", "m1"),
        StoreGroupChanged.new(producer="grouping", payload=group),
    )

    assert set(uow.repo.bargains) == {"discount:c:s1:milk"}
    assert _announced(uow)[-1] == ("expired", "discount:c:m1:milk")


async def test_substitutes_and_barcodes_reach_cross_chain_bargains() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    prices = [_prices("xb", store, 0.5, "b-milk", 500) for store in ("b1", "b2")]
    prices += [_prices("xa", "a1", 0.5, "a-milk", 400), _prices("xc", "c1", 0.5, "c-milk", 400)]
    same = Substitute(level="L2", chain="xb", sku="b-milk", score=0.95, reason="same product")
    substitutes = SubstitutionsChangedPayload(chain="xa", sku="a-milk", substitutes=(same,))

    def product(chain: str, sku: str) -> ProductObserved:
        payload = ProductObservedPayload(
            chain=chain, sku=sku, change="new", name="Milk 2L", barcode="9300000000017", observed_at=NOW
        )
        return ProductObserved.new(producer="scraper", payload=payload)

    await _deliver(
        uow,
        *prices,
        SubstitutionsChanged.new(producer="substitutions", payload=substitutes),
        product("xc", "c-milk"),
        product("xb", "b-milk"),
    )

    assert set(uow.repo.bargains) == {"cross_chain:xa:a1:a-milk", "cross_chain:xc:c1:c-milk"}


async def test_the_expirer_expires_at_the_clocks_time_until_stopped() -> None:
    uow = FakeUnitOfWork(InMemoryBargainsRepository())
    await _deliver(uow, *_month_then_drop("c", "s1"))
    stopping = asyncio.Event()

    def clock() -> datetime:
        stopping.set()  # one round, then stop
        return NOW + timedelta(days=8)

    await asyncio.wait_for(Expirer(uow=uow, clock=clock, policy=Policy(), interval_s=60).run(stopping), 5)

    assert not uow.repo.bargains
    assert _announced(uow) == [("appeared", "discount:c:s1:milk"), ("expired", "discount:c:s1:milk")]


@pytest.mark.parametrize(("fast", "wait_ms"), [(True, 50), (False, 500)])
def test_prices_are_polled_every_50_ms_unless_fast_polling_is_off(fast: bool, wait_ms: int) -> None:
    router = build_router(
        uow=FakeUnitOfWork(InMemoryBargainsRepository()),
        clock=lambda: NOW,
        policy=Policy(),
        consumers=ConsumerGroup("bargains", 100),
        fast_price_polling=fast,
    )
    [prices] = [s for s in router.subscribers if s.topic_names == ["prices.scraped.v1"]]  # type: ignore[attr-defined]
    # FastStream keeps the consumer's options here until the subscriber starts.
    assert prices._connection_args["fetch_max_wait_ms"] == wait_ms  # type: ignore[attr-defined]
