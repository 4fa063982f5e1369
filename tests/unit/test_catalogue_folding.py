"""The catalogue's read model folds events idempotently: late and repeated events change nothing."""

import copy
import random
from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from catalogue import service_layer
from catalogue.domain.answering import Shelf
from catalogue.domain.history import Segment, fold
from catalogue.handlers import build_router
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
    Bargain,
    BargainChange,
    BargainsChangedPayload,
    PricesScrapedPayload,
    ProductObservedPayload,
    StatedUnitPrice,
    StoreGroupChangedPayload,
    Substitute,
    SubstitutionsChangedPayload,
)
from servicekit.consuming import ConsumerGroup
from servicekit.kept_reads import KeptReads
from tests.fakes.catalogue import InMemoryCatalogueRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
Uow = FakeUnitOfWork[InMemoryCatalogueRepository]


def _prices(store: str, sku: str, price: int, hours_ago: float, *, chain: str = "c") -> PricesScraped:
    observation = PriceObservation(
        sku=sku,
        price_cents=price,
        observed_at=NOW - timedelta(hours=hours_ago),
        unit_price=StatedUnitPrice(cents=price // 2, quantity=100, unit="g", text="per 100g"),
    )
    payload = PricesScrapedPayload(chain=chain, store_id=store, source="ingest", observations=(observation,))
    return PricesScraped.new(producer="scraper", payload=payload)


def _product(
    sku: str, name: str, hours_ago: float, *, shared: str | None = "pantry/cereal"
) -> ProductObserved:
    payload = ProductObservedPayload(
        chain="c",
        sku=sku,
        change="changed",
        name=name,
        brand="Sanitarium",
        size="575g",
        category="Breakfast",
        observed_at=NOW - timedelta(hours=hours_ago),
        shared_category=shared,
    )
    return ProductObserved.new(producer="scraper", payload=payload)


def _group(group: str, version: int, anchor: str, *members: str, reason: str = "formed") -> StoreGroupChanged:
    payload = StoreGroupChangedPayload(
        chain="c",
        group_id=group,
        group_version=version,
        anchor_store_id=anchor,
        member_store_ids=members,
        reason=reason,  # type: ignore[arg-type]
    )
    return StoreGroupChanged.new(producer="grouping", payload=payload)


async def _deliver(uow: Uow, *events: Event) -> None:
    """Publish events, as their producers encode them, to the catalogue's handlers."""
    broker = KafkaBroker()
    broker.include_router(build_router(uow=uow, consumers=ConsumerGroup("catalogue", 100)))
    async with TestKafkaBroker(broker) as test_broker:
        for event in events:
            record = CODEC.encode(event)
            headers = {name: value.decode() for name, value in record.headers}
            await test_broker.publish(record.value, topic=topic_for(type(event)).name, headers=headers)


async def test_the_newest_price_is_current_and_a_late_one_changes_nothing() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _prices("s1", "milk", 300, 1))
    await _deliver(uow, _prices("s1", "milk", 250, 30))  # observed earlier, arrives later

    current = uow.repo.prices["c", "s1", "milk"]
    assert (current.price_cents, current.observed_at) == (300, NOW - timedelta(hours=1))
    assert (current.stated_cents, current.stated_unit) == (150, "g")
    # The late price is history all the same: 250 before 300.
    assert [s.price_cents for s in uow.repo.history["c", "s1", "milk"]] == [250, 300]


async def test_a_duplicate_event_changes_nothing_at_all() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    events = [_prices("s1", "milk", 300, 5), _prices("s1", "milk", 320, 2), _product("milk", "Milk", 3)]
    await _deliver(uow, *events)
    before = copy.deepcopy(uow.repo)

    await _deliver(uow, *events)

    assert uow.repo == before
    assert len(uow.claimed) == 3


async def test_history_keeps_only_changes() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    prices = [300, 300, 280, 280, 300]
    await _deliver(uow, *(_prices("s1", "milk", p, 10 - i) for i, p in enumerate(prices)))

    history = uow.repo.history["c", "s1", "milk"]
    assert [(s.price_cents, s.starts_at, s.ends_at) for s in history] == [
        (300, NOW - timedelta(hours=10), NOW - timedelta(hours=9)),
        (280, NOW - timedelta(hours=8), NOW - timedelta(hours=7)),
        (300, NOW - timedelta(hours=6), NOW - timedelta(hours=6)),
    ]


def test_history_is_the_same_whatever_order_sightings_arrive_in() -> None:
    sightings = [(300, 1), (300, 2), (280, 3), (280, 4), (300, 5), (310, 6), (310, 7), (300, 8)]
    ordered: tuple[Segment, ...] = ()
    for price, hour in sightings:
        ordered = fold(
            ordered, price_cents=price, was_price_cents=None, observed_at=NOW + timedelta(hours=hour)
        )
    rng = random.Random(4)
    for _ in range(20):
        shuffled = sightings[:]
        rng.shuffle(shuffled)
        history: tuple[Segment, ...] = ()
        for price, hour in shuffled:
            history = fold(
                history, price_cents=price, was_price_cents=None, observed_at=NOW + timedelta(hours=hour)
            )
        # A late sighting inside a run may split it; the runs of prices are the same either way.
        runs = [s.price_cents for s in history]
        assert runs == [s.price_cents for s in ordered] == [300, 280, 300, 310, 300]
        assert history[0].starts_at == ordered[0].starts_at
        assert history[-1].ends_at == ordered[-1].ends_at


async def test_a_renamed_product_takes_its_newest_name_and_an_older_one_is_ignored() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _product("wb", "Weet-Bix 575g", 10), _product("wb", "Weet-Bix Original 575g", 2))
    await _deliver(uow, _product("wb", "Old Name", 20))

    product = uow.repo.products["c", "wb"]
    assert product.name == "Weet-Bix Original 575g"
    assert "weetbix" in product.search_text
    assert "original" in product.search_text


async def test_groups_place_members_under_their_anchor_and_late_versions_change_nothing() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _group("g1", 2, "s1", "s2", "s3"), _group("g1", 1, "s9", "s2"))
    assert uow.repo.placements == {
        ("c", "s1"): ("g1", "s1"),
        ("c", "s2"): ("g1", "s1"),
        ("c", "s3"): ("g1", "s1"),
    }

    # s3 moves to g2; whichever of the two changes comes first, it ends under g2's anchor.
    await _deliver(uow, _group("g2", 1, "s7", "s3"), _group("g1", 3, "s1", "s2", reason="member_left"))
    assert uow.repo.placements["c", "s3"] == ("g2", "s7")
    assert uow.repo.placements["c", "s2"] == ("g1", "s1")

    await _deliver(uow, _group("g1", 4, "s1", reason="dissolved"))
    assert ("c", "s2") not in uow.repo.placements
    assert ("c", "s1") not in uow.repo.placements


async def test_a_members_price_its_anchor_shows_is_answered_not_stored() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _prices("a", "milk", 300, 5), _prices("a", "eggs", 500, 5), _group("g1", 1, "a", "m"))

    # The member's milk is its zone's; its eggs are its own. The anchor's milk seen 4 h earlier answers.
    await _deliver(uow, _prices("m", "milk", 300, 1), _prices("m", "eggs", 450, 1))

    assert ("c", "m", "milk") not in uow.repo.prices
    assert uow.repo.prices["c", "m", "eggs"].price_cents == 450


async def test_an_anchors_price_answers_only_the_same_label_seen_within_a_day() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _prices("a", "milk", 300, 30), _group("g1", 1, "a", "m"))

    # The anchor was last seen 29 hours before: it may charge something else by now.
    await _deliver(uow, _prices("m", "milk", 300, 1))
    assert uow.repo.prices["c", "m", "milk"].price_cents == 300

    # Seen again, at the same price but with a unit price the member's label does not show.
    fresh = _prices("a", "milk", 300, 0.5)
    observation = fresh.payload.observations[0].model_copy(update={"unit_price": None})
    payload = fresh.payload.model_copy(update={"observations": (observation,)})
    await _deliver(
        uow, PricesScraped.new(producer="scraper", payload=payload), _prices("m", "milk", 300, 0.25)
    )
    assert uow.repo.prices["c", "m", "milk"].observed_at == NOW - timedelta(hours=0.25)


async def test_a_members_own_price_ends_when_it_shows_its_anchors_again() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(
        uow, _prices("a", "milk", 300, 10), _group("g1", 1, "a", "m"), _prices("m", "milk", 280, 9)
    )
    assert uow.repo.prices["c", "m", "milk"].price_cents == 280

    await _deliver(uow, _prices("a", "milk", 300, 3), _prices("m", "milk", 300, 2))

    # The anchor answers again; the member's own run is kept as history.
    assert ("c", "m", "milk") not in uow.repo.prices
    assert [(s.price_cents, s.ends_at) for s in uow.repo.history["c", "m", "milk"]] == [
        (280, NOW - timedelta(hours=9))
    ]
    # Its own price again later starts a run of its own.
    await _deliver(uow, _prices("m", "milk", 270, 1))
    assert [s.price_cents for s in uow.repo.history["c", "m", "milk"]] == [280, 270]


async def test_placing_members_drops_the_prices_their_anchor_answers() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(
        uow,
        _prices("a", "milk", 300, 3),
        _prices("a", "eggs", 500, 3),
        _prices("m", "milk", 300, 2),
        _prices("m", "eggs", 450, 2),
        _prices("x", "milk", 300, 2),
        _prices("n", "milk", 300, 2),
    )

    await _deliver(uow, _group("g1", 1, "a", "m", "n"))

    assert set(uow.repo.prices) == {
        ("c", "a", "milk"),
        ("c", "a", "eggs"),
        ("c", "m", "eggs"),
        ("c", "x", "milk"),
    }
    # The anchor's run answers for the member's: the copy leaves no run of its own behind.
    assert ("c", "m", "milk") not in uow.repo.history
    # A group dissolved takes nothing more away.
    await _deliver(uow, _group("g1", 2, "a", reason="dissolved"))
    assert len(uow.repo.prices) == 4


async def test_substitutes_are_replaced_whole_by_a_newer_set_only() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    older = SubstitutionsChanged.new(
        producer="substitutions",
        payload=SubstitutionsChangedPayload(
            chain="c",
            sku="wb",
            substitutes=(Substitute(level="L3", chain="d", sku="x", score=0.5, reason="alike"),),
        ),
    )
    newer = SubstitutionsChanged.new(
        producer="substitutions",
        payload=SubstitutionsChangedPayload(
            chain="c",
            sku="wb",
            substitutes=(Substitute(level="L1", chain="d", sku="y", score=1.0, reason="barcode"),),
        ),
    )
    older = older.model_copy(update={"occurred_at": newer.occurred_at - timedelta(seconds=5)})
    await _deliver(uow, newer, older)

    assert [s.sku for s in uow.repo.substitutes["c", "wb"]] == ["y"]


def _bargains(change: str, observed_hours_ago: float) -> BargainsChanged:
    bargain = Bargain(
        bargain_id="discount:c:s1:milk",
        kind="discount",
        chain="c",
        store_id="s1",
        sku="milk",
        price_cents=250,
        reference_cents=300,
        score=0.4,
        reason="17% below its usual price",
        observed_at=NOW - timedelta(hours=observed_hours_ago),
    )
    payload = BargainsChangedPayload(
        chain="c",
        store_id="s1",
        changes=(BargainChange(change=change, bargain=bargain),),  # type: ignore[arg-type]
    )
    return BargainsChanged.new(producer="bargains", payload=payload)


async def test_an_expired_bargain_is_not_revived_by_a_late_announcement() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    await _deliver(uow, _bargains("appeared", 5), _bargains("expired", 2), _bargains("appeared", 3))

    bargain, expired = uow.repo.bargains["discount:c:s1:milk"]
    assert expired
    assert bargain.observed_at == NOW - timedelta(hours=2)


async def test_a_batch_folds_like_its_events_one_by_one_whatever_their_order() -> None:
    # Keys seen once, repeated, late inside a run, late before it, and at one instant twice.
    rng = random.Random(9)
    sightings = [(store, sku, rng.choice((300, 300, 280)), rng.randrange(48)) for store in ("s1", "s2")
                 for sku in ("milk", "tea", "bread") for _ in range(rng.randrange(1, 6))]  # fmt: skip
    rng.shuffle(sightings)
    events = [_prices(store, sku, price, hours).payload for store, sku, price, hours in sightings]
    batched, one_by_one = (
        FakeUnitOfWork(InMemoryCatalogueRepository()),
        FakeUnitOfWork(InMemoryCatalogueRepository()),
    )
    # Some history is there before: the batch extends, splits and bridges runs already stored.
    for uow in (batched, one_by_one):
        async with uow:
            await service_layer.fold_prices(uow, events[:3])
    async with batched:
        await service_layer.fold_prices(batched, events[3:])
    for event in events[3:]:
        async with one_by_one:
            await service_layer.fold_prices(one_by_one, [event])

    assert batched.repo.history == one_by_one.repo.history
    assert batched.repo.prices == one_by_one.repo.prices
    assert sum(len(runs) for runs in batched.repo.history.values()) > len(batched.repo.history), "not vacuous"


async def _fold_kept(uow: Uow, shelves: KeptReads[Shelf], *events: PricesScraped) -> None:
    async with uow:
        await service_layer.fold_prices(uow, [e.payload for e in events], anchor_shelves=shelves)


async def test_anchors_prices_are_kept_between_batches_while_the_anchor_stays_as_it_was() -> None:
    uow, shelves = FakeUnitOfWork(InMemoryCatalogueRepository()), KeptReads[Shelf]()
    await _deliver(uow, _prices("a", "milk", 300, 5), _group("g1", 1, "a", "m1", "m2"))
    await _fold_kept(uow, shelves, _prices("m1", "milk", 300, 4))
    read = uow.repo.shelves_read
    await _fold_kept(uow, shelves, _prices("m2", "milk", 300, 3.5))
    # Only the member's own prices were read: its anchor's came from the first batch.
    assert uow.repo.shelves_read == read + 1
    assert ("c", "m1", "milk") not in uow.repo.prices
    assert ("c", "m2", "milk") not in uow.repo.prices


async def test_an_anchor_whose_prices_changed_is_read_again() -> None:
    uow, shelves = FakeUnitOfWork(InMemoryCatalogueRepository()), KeptReads[Shelf]()
    await _deliver(uow, _prices("a", "milk", 300, 5), _group("g1", 1, "a", "m1", "m2"))
    await _fold_kept(uow, shelves, _prices("m1", "milk", 300, 4))

    # The anchor's milk goes up, written by another process; a member still shows the old price.
    await _deliver(uow, _prices("a", "milk", 350, 3))
    await _fold_kept(uow, shelves, _prices("m2", "milk", 300, 2))
    assert uow.repo.prices["c", "m2", "milk"].price_cents == 300, "its own now: the anchor charges 350"


@pytest.mark.parametrize("seed", range(3))
async def test_keeping_anchors_prices_changes_no_answer(seed: int) -> None:
    rng = random.Random(seed)
    plain, kept = FakeUnitOfWork(InMemoryCatalogueRepository()), FakeUnitOfWork(InMemoryCatalogueRepository())
    shelves = KeptReads[Shelf](limit=rng.choice([3, 1_000]))
    for uow in (plain, kept):
        await _deliver(uow, _group("g1", 1, "a", "m1", "m2", "m3"))
    for hours in range(60, 0, -6):
        zone = {sku: rng.choice([300, 350, 400]) for sku in ("milk", "tea", "eggs")}
        stores = ["a", "m1", "m2", "m3"]
        rng.shuffle(stores)
        for store in stores:
            for sku, price in zone.items():
                event = _prices(store, sku, price if rng.random() < 0.8 else price + 10, hours - rng.random())
                async with plain:
                    await service_layer.fold_prices(plain, [event.payload])
                await _fold_kept(kept, shelves, event)
    assert kept.repo.shelves_read < plain.repo.shelves_read
    assert kept.repo.prices == plain.repo.prices
    assert kept.repo.history == plain.repo.history
