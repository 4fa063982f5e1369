"""The substitutions matcher over an in-memory repository and unit of work; its handler on TestKafkaBroker."""

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from contracts import CODEC, topic
from contracts.events import ProductObserved, SubstitutionsChanged
from contracts.events.v1 import ProductObservedPayload
from servicekit.consuming import ConsumerGroup
from substitutions.domain.catalogue import Description, ProductKey, SubstituteRow
from substitutions.domain.matching import Policy
from substitutions.handlers import build_router
from substitutions.service_layer import Matcher
from substitutions.workers import MatcherLoader
from tests.fakes.substitutions import HashingEncoder, InMemorySubstitutionsRepository, list_of
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GTIN_MILK = "9300000000011"
FRESHMART_MILK: ProductKey = ("freshmart", "milk")
VALUEWAY_MILK: ProductKey = ("valueway", "milk")

Uow = FakeUnitOfWork[InMemorySubstitutionsRepository]


def _milk(chain: str, sku: str = "milk") -> Description:
    return Description(chain, sku, "Pauls Full Cream Milk", brand="Pauls", size="2L", barcode=GTIN_MILK)


BREAD = Description("valueway", "milk", "Tip Top White Bread 700g", brand="Tip Top")
BREAD_LOAF = Description("valueway", "bread", "Tip Top White Bread 700g", brand="Tip Top")


async def _started(
    repo: InMemorySubstitutionsRepository | None = None,
) -> tuple[Matcher, Uow, HashingEncoder]:
    uow = FakeUnitOfWork(repo or InMemorySubstitutionsRepository())
    encoder = HashingEncoder()
    matcher = Matcher(uow=uow, encoder_factory=lambda: encoder, policy=Policy())
    await matcher.start()
    return matcher, uow, encoder


async def _observe(matcher: Matcher, description: Description, observed_at: datetime = T0) -> int:
    async with matcher.unit_of_work() as work:
        return await matcher.observe(work, description=description, observed_at=observed_at, now=NOW)


async def _observe_then_fail(matcher: Matcher, description: Description) -> None:
    async with matcher.unit_of_work() as work:
        await matcher.observe(work, description=description, observed_at=T0, now=NOW)
        raise ConnectionError("the database went away before the commit")


def _keys(rows: list[SubstituteRow] | None, level: str = "L1") -> set[ProductKey]:
    return {(row.chain, row.sku) for row in rows or () if row.level == level}


def _changed(uow: Uow) -> dict[ProductKey, list[tuple[str, str, str]]]:
    """Return the newest published list of each product, as (level, chain, sku)."""
    return {
        (event.payload.chain, event.payload.sku): [
            (s.level, s.chain, s.sku) for s in event.payload.substitutes
        ]
        for event in uow.published_of(SubstitutionsChanged)
    }


# --- observing ------------------------------------------------------------------------------------


async def test_a_new_product_gets_its_substitutes_and_its_neighbours_reverse_links() -> None:
    matcher, uow, _ = await _started()
    assert await _observe(matcher, _milk("freshmart")) == 1
    assert _changed(uow) == {FRESHMART_MILK: []}
    uow.published.clear()

    assert await _observe(matcher, _milk("valueway")) == 2

    assert _changed(uow) == {
        VALUEWAY_MILK: [("L1", "freshmart", "milk")],
        FRESHMART_MILK: [("L1", "valueway", "milk")],
    }
    stored = uow.repo.stored_lists
    assert stored[VALUEWAY_MILK] == [
        SubstituteRow(
            level="L1", chain="freshmart", sku="milk", score=1.0, reason=f"same barcode {GTIN_MILK}"
        )
    ]
    assert _keys(stored[FRESHMART_MILK]) == {VALUEWAY_MILK}
    assert uow.repo.computed_at[VALUEWAY_MILK] == NOW
    [event] = [e for e in uow.published_of(SubstitutionsChanged) if e.payload.chain == "valueway"]
    assert event.producer == "substitutions"
    assert event.payload.substitutes[0].reason == f"same barcode {GTIN_MILK}"
    assert matcher.stats()["products"] == 2
    assert matcher.stats()["observed"] == 2


async def test_a_repeated_identical_description_changes_nothing() -> None:
    matcher, uow, encoder = await _started()
    await _observe(matcher, _milk("freshmart"))
    await _observe(matcher, _milk("valueway"))
    published, encoded = len(uow.published), len(encoder.encoded)

    assert await _observe(matcher, _milk("valueway"), T0 + timedelta(hours=1)) == 0

    assert len(uow.published) == published
    assert len(encoder.encoded) == encoded
    assert matcher.observed == 2
    # As the upsert's WHERE does: an unchanged description keeps the time it was first seen.
    assert uow.repo.rows[VALUEWAY_MILK].observed_at == T0


async def test_a_renamed_product_leaves_its_neighbours_lists() -> None:
    matcher, uow, _ = await _started()
    await _observe(matcher, _milk("freshmart"))
    await _observe(matcher, _milk("valueway"))
    uow.published.clear()

    assert await _observe(matcher, BREAD, T0 + timedelta(hours=1)) == 2

    assert _changed(uow) == {VALUEWAY_MILK: [], FRESHMART_MILK: []}
    assert uow.repo.stored_lists[FRESHMART_MILK] == []


async def test_an_older_observation_never_replaces_a_newer_one() -> None:
    matcher, uow, _ = await _started()
    await _observe(matcher, _milk("freshmart"))
    await _observe(matcher, BREAD, T0 + timedelta(hours=1))
    uow.published.clear()

    assert await _observe(matcher, _milk("valueway"), T0) == 0

    assert uow.published == []
    assert uow.repo.rows[VALUEWAY_MILK].description == BREAD
    assert matcher.catalogue is not None
    assert list_of(matcher.catalogue, *FRESHMART_MILK) == []


async def test_a_failed_unit_of_work_leaves_the_catalogue_reloaded_not_running_ahead() -> None:
    matcher, uow, _ = await _started()
    await _observe(matcher, _milk("freshmart"))

    with pytest.raises(ConnectionError):
        await _observe_then_fail(matcher, _milk("valueway"))
    assert VALUEWAY_MILK not in uow.repo.rows

    assert await _observe(matcher, _milk("greengrocer")) == 2

    assert matcher.catalogue is not None
    assert matcher.catalogue.index.position(*VALUEWAY_MILK) is None
    assert _keys(list_of(matcher.catalogue, *FRESHMART_MILK)) == {("greengrocer", "milk")}
    assert _keys(uow.repo.stored_lists[("greengrocer", "milk")]) == {FRESHMART_MILK}
    assert len(matcher) == 2


async def test_a_committed_observation_keeps_the_catalogue_without_reloading() -> None:
    matcher, _, _ = await _started()
    catalogue = matcher.catalogue

    await _observe(matcher, _milk("freshmart"))
    await _observe(matcher, _milk("valueway"))

    assert matcher.catalogue is catalogue


async def test_start_loads_stored_products_encoding_only_uncached_names_and_adopts_stored_lists() -> None:
    first, uow, _ = await _started()
    await _observe(first, _milk("freshmart"))
    await _observe(first, _milk("valueway"))
    repo = uow.repo
    await repo.upsert_product(description=BREAD_LOAF, observed_at=T0)  # stored by another replica

    restarted, uow, encoder = await _started(repo)

    assert len(restarted) == 3
    assert encoder.encoded == ["white bread"]
    assert ("hashing-trigrams", "white bread") in uow.repo.vectors
    assert restarted.catalogue is not None
    assert _keys(list_of(restarted.catalogue, *FRESHMART_MILK)) == {VALUEWAY_MILK}
    assert restarted.stats()["ready"] is True


async def test_the_loader_retries_while_the_database_is_unreachable() -> None:
    uow = FakeUnitOfWork(InMemorySubstitutionsRepository())
    attempts = 0

    def flaky() -> Uow:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionRefusedError("database unreachable")
        return uow

    matcher = Matcher(uow=flaky, encoder_factory=HashingEncoder, policy=Policy())
    stopping = asyncio.Event()
    loader = asyncio.create_task(MatcherLoader(matcher, retry_s=0.0).run(stopping))

    await asyncio.wait_for(matcher.ready.wait(), timeout=5)
    stopping.set()
    await asyncio.wait_for(loader, timeout=5)
    assert attempts == 2


# --- rebuilding -----------------------------------------------------------------------------------


REBUILT_AT = NOW + timedelta(days=1)


async def test_a_rebuild_publishes_only_changed_lists_with_progress() -> None:
    matcher, uow, encoder = await _started()
    for description in (_milk("freshmart"), _milk("valueway"), _milk("greengrocer")):
        await _observe(matcher, description)
    right = uow.repo.stored_lists[VALUEWAY_MILK]
    uow.repo.stored_lists[VALUEWAY_MILK] = []  # as if a list had been lost
    uow.published.clear()
    encoded = len(encoder.encoded)

    progress = matcher.begin_rebuild()
    assert progress is not None
    assert matcher.begin_rebuild() is None  # one rebuild at a time
    done = await matcher.rebuild(progress, now=REBUILT_AT)

    assert (done.status, done.phase, done.error) == ("done", "done", None)
    assert (done.products, done.encoded, done.changed) == (3, 0, 1)
    assert done.done == done.total == 3
    assert len(encoder.encoded) == encoded
    assert _changed(uow) == {VALUEWAY_MILK: [(r.level, r.chain, r.sku) for r in right]}
    assert uow.repo.stored_lists[VALUEWAY_MILK] == right
    assert uow.repo.computed_at[VALUEWAY_MILK] == REBUILT_AT
    assert uow.repo.computed_at[FRESHMART_MILK] == NOW
    assert matcher.stats()["rebuild"]["changed"] == 1

    again = matcher.begin_rebuild()
    assert again is not None
    assert (await matcher.rebuild(again, now=REBUILT_AT)).changed == 0
    assert len(uow.published) == 1


async def test_a_rebuild_encodes_names_stored_by_others_and_reports_them() -> None:
    matcher, uow, encoder = await _started()
    await _observe(matcher, _milk("freshmart"))
    await uow.repo.upsert_product(description=_milk("valueway"), observed_at=T0)  # another replica's
    await uow.repo.upsert_product(description=BREAD_LOAF, observed_at=T0)
    uow.published.clear()

    progress = matcher.begin_rebuild()
    assert progress is not None
    done = await matcher.rebuild(progress, now=REBUILT_AT)

    assert (done.status, done.products, done.encoded, done.changed) == ("done", 3, 1, 3)
    assert len(matcher) == 3
    assert set(_changed(uow)) == {FRESHMART_MILK, VALUEWAY_MILK, ("valueway", "bread")}
    assert _keys(uow.repo.stored_lists[FRESHMART_MILK]) == {VALUEWAY_MILK}
    assert encoder.encoded.count("full cream milk") == 1
    assert encoder.encoded.count("white bread") == 1


class _FailingSaves(InMemorySubstitutionsRepository):
    async def save_lists(
        self, *, lists: Mapping[ProductKey, list[SubstituteRow]], computed_at: datetime
    ) -> None:
        raise RuntimeError("disk full")


async def test_a_failed_rebuild_says_why_and_keeps_the_catalogue() -> None:
    repo = _FailingSaves()
    await repo.upsert_product(description=_milk("freshmart"), observed_at=T0)
    await repo.upsert_product(description=_milk("valueway"), observed_at=T0)
    matcher, uow, _ = await _started(repo)
    catalogue = matcher.catalogue

    progress = matcher.begin_rebuild()
    assert progress is not None
    done = await matcher.rebuild(progress, now=REBUILT_AT)

    assert (done.status, done.error) == ("failed", "RuntimeError: disk full")
    assert matcher.catalogue is catalogue
    assert uow.published == []
    assert matcher.begin_rebuild() is not None  # a failed rebuild may be started again


KINDS = ("Full Cream Milk", "Skim Milk", "Orange Juice", "Apple Juice", "Soy Milk")
HOUSE_BRANDED = [
    Description(chain, f"{chain}-{number}", f"{house} {kind} {size}", size=size)
    for chain, house in (("freshmart", "Homebrand"), ("valueway", "Valuepick"))
    for number, (kind, size) in enumerate((kind, size) for kind in KINDS for size in ("1L", "2L"))
]


async def test_a_service_started_empty_learns_house_brands_again_each_time_its_catalogue_doubles() -> None:
    uow = FakeUnitOfWork(InMemorySubstitutionsRepository())
    matcher = Matcher(
        uow=uow, encoder_factory=HashingEncoder, policy=Policy(), relearn_from=10, clock=lambda: REBUILT_AT
    )
    await matcher.start()
    for description in HOUSE_BRANDED[:9]:
        await _observe(matcher, description)
    assert (matcher.progress.status, matcher.learned_from) == ("idle", 0)

    await _observe(matcher, HOUSE_BRANDED[9])  # ten held: learned from none
    await asyncio.wait_for(matcher.settled(), timeout=5)
    assert (matcher.progress.status, matcher.progress.products, matcher.learned_from) == ("done", 10, 10)
    assert matcher.catalogue is not None
    assert matcher.catalogue.own == set()  # one chain alone has nothing to compare with

    for description in HOUSE_BRANDED[10:19]:
        await _observe(matcher, description)
    assert matcher.progress.products == 10  # not doubled yet
    await _observe(matcher, HOUSE_BRANDED[19])
    await asyncio.wait_for(matcher.settled(), timeout=5)

    assert (matcher.progress.status, matcher.progress.products, matcher.learned_from) == ("done", 20, 20)
    assert matcher.catalogue.own == {"homebrand", "valuepick"}
    # The lists are those of a service that learned from all twenty at its start.
    restarted = Matcher(uow=FakeUnitOfWork(uow.repo), encoder_factory=HashingEncoder, policy=Policy())
    await restarted.start()
    progress = restarted.begin_rebuild()
    assert progress is not None
    assert (await restarted.rebuild(progress, now=REBUILT_AT)).changed == 0


def _learning_at_two() -> Matcher:
    """Return a matcher over an empty store that learns again from two products on."""
    uow = FakeUnitOfWork(InMemorySubstitutionsRepository())
    return Matcher(uow=uow, encoder_factory=HashingEncoder, policy=Policy(), relearn_from=2)


async def test_a_quiet_matcher_learns_from_the_products_that_came_since_it_last_learned() -> None:
    matcher = _learning_at_two()
    await matcher.start()
    for description in HOUSE_BRANDED[:2]:
        await _observe(matcher, description)
    await asyncio.wait_for(matcher.settled(), timeout=5)
    await _observe(matcher, HOUSE_BRANDED[2])
    assert (matcher.progress.status, matcher.learned_from) == ("done", 2)  # three is no doubling

    async with matcher.unit_of_work():
        assert not matcher.relearn_if_quiet(quiet_s=0)  # a unit of work may hold a product unstored
    assert not matcher.relearn_if_quiet(quiet_s=60)  # not quiet for long enough
    assert matcher.relearn_if_quiet(quiet_s=0)
    await asyncio.wait_for(matcher.settled(), timeout=5)

    assert (matcher.progress.status, matcher.progress.products, matcher.learned_from) == ("done", 3, 3)
    assert not matcher.relearn_if_quiet(quiet_s=0)  # nothing came since


async def test_the_loader_has_the_matcher_learn_again_once_quiet() -> None:
    matcher = _learning_at_two()
    stopping = asyncio.Event()
    loader = asyncio.create_task(MatcherLoader(matcher, quiet_s=0.05).run(stopping))
    await asyncio.wait_for(matcher.ready.wait(), timeout=5)
    for description in HOUSE_BRANDED[:2]:
        await _observe(matcher, description)
    await asyncio.wait_for(matcher.settled(), timeout=5)
    await _observe(matcher, HOUSE_BRANDED[2])

    await asyncio.sleep(1.0)  # quiet: the loader looks every 0.05 s
    await asyncio.wait_for(matcher.settled(), timeout=5)
    stopping.set()
    await asyncio.wait_for(loader, timeout=5)

    assert (matcher.progress.status, matcher.progress.products, matcher.learned_from) == ("done", 3, 3)


class _CountedLoads(InMemorySubstitutionsRepository):
    """Counts the loads of every product, as a rebuild makes one."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def products(self) -> list[Description]:
        self.loads += 1
        return await super().products()


async def test_a_rebuild_loads_once_the_open_observations_have_ended_and_new_ones_wait_for_it() -> None:
    repo = _CountedLoads()
    matcher, uow, _ = await _started(repo)
    loads = repo.loads
    first = _observe(matcher, _milk("freshmart"))
    async with matcher.unit_of_work() as work:  # an observation whose product is stored, not committed
        await matcher.observe(work, description=_milk("valueway"), observed_at=T0, now=NOW)
        progress = matcher.begin_rebuild()
        assert progress is not None
        rebuilding = asyncio.create_task(matcher.rebuild(progress, now=REBUILT_AT))
        waiting = asyncio.create_task(first)  # a new observation
        for _ in range(20):
            await asyncio.sleep(0)
        assert repo.loads == loads  # the rebuild waits for this unit of work
        assert not waiting.done()  # and the new observation for the rebuild

    done = await asyncio.wait_for(rebuilding, timeout=5)
    await asyncio.wait_for(waiting, timeout=5)

    assert (done.status, done.products, repo.loads) == ("done", 1, loads + 1)
    assert len(matcher) == 2
    assert _keys(uow.repo.stored_lists[FRESHMART_MILK]) == {VALUEWAY_MILK}


class _SlowLoads(InMemorySubstitutionsRepository):
    """Loads its products only once let: a rebuild in progress, held there."""

    def __init__(self) -> None:
        super().__init__()
        self.loading = asyncio.Event()
        self.let = asyncio.Event()

    async def products(self) -> list[Description]:
        if self.loading.is_set():
            await self.let.wait()
        return await super().products()


async def test_a_stopping_service_cancels_a_rebuild_growth_started_and_it_commits_nothing() -> None:
    repo = _SlowLoads()
    uow = FakeUnitOfWork(repo)
    matcher = Matcher(uow=uow, encoder_factory=HashingEncoder, policy=Policy(), relearn_from=2)
    await matcher.start()
    await _observe(matcher, _milk("freshmart"))
    repo.loading.set()

    await _observe(matcher, _milk("valueway"))  # two held: a rebuild starts and waits on the load
    assert matcher.progress.status == "running"
    stored, published = dict(repo.stored_lists), len(uow.published)
    await asyncio.wait_for(matcher.stop(), timeout=5)

    assert (matcher.progress.status, matcher.progress.error) == ("failed", "cancelled: the service stopped")
    assert repo.stored_lists == stored
    assert len(uow.published) == published
    assert matcher.begin_rebuild() is not None  # another may start


# --- the handler ----------------------------------------------------------------------------------


OBSERVED = topic("products.observed.v1")


async def test_the_handler_observes_a_product_once_however_often_it_is_delivered() -> None:
    matcher, uow, _ = await _started()
    await _observe(matcher, _milk("freshmart"))
    broker = KafkaBroker()
    broker.include_router(
        build_router(
            consumers=ConsumerGroup("test"), uow=matcher.unit_of_work, matcher=matcher, clock=lambda: NOW
        )
    )
    payload = ProductObservedPayload(
        chain="valueway",
        sku="milk",
        change="new",
        name="Pauls Full Cream Milk",
        brand="Pauls",
        size="2L",
        barcode=GTIN_MILK,
        observed_at=T0,
    )
    record = CODEC.encode(ProductObserved.new(producer="scraper", payload=payload))
    headers = {key: value.decode() for key, value in record.headers}
    uow.published.clear()

    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(record.value, topic=OBSERVED.name, key=record.key, headers=headers)

    assert uow.repo.upserts == 2  # freshmart's, then valueway's once: the copy was claimed already
    assert matcher.observed == 2
    assert set(_changed(uow)) == {VALUEWAY_MILK, FRESHMART_MILK}
    assert len(uow.published) == 2
    assert uow.repo.rows[VALUEWAY_MILK].description == _milk("valueway")
    assert uow.repo.computed_at[VALUEWAY_MILK] == NOW


async def test_a_shared_category_arriving_later_links_two_chains_at_l4() -> None:
    matcher, uow, _ = await _started()
    milk = Description(
        "freshmart",
        "milk",
        "Pauls Full Cream Milk 2L",
        brand="Pauls",
        category="Dairy",
        shared_category="dairy",
    )
    powder = Description(
        "valueway", "powder", "Pauls Full Cream Milk Powder 1kg", brand="Pauls", category="dairy-eggs-fridge"
    )
    await _observe(matcher, milk)
    await _observe(matcher, powder)
    assert matcher.catalogue is not None
    assert _keys(list_of(matcher.catalogue, "freshmart", "milk"), "L4") == set()

    # The scraper's map now places the other chain's aisle on the shared tree: a new description.
    mapped = replace(powder, shared_category="dairy")
    assert await _observe(matcher, mapped, T0 + timedelta(hours=1)) > 0
    assert uow.repo.rows[("valueway", "powder")].description.shared_category == "dairy"
    assert _keys(list_of(matcher.catalogue, "freshmart", "milk"), "L4") == {("valueway", "powder")}
