"""The bargains use cases over an in-memory repository: what each event lists, flags and announces."""

import copy
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bargains import service_layer
from bargains.domain.answering import Run
from bargains.domain.bargains import Policy
from bargains.domain.history import NO_LABEL, Label, Segment, fold
from bargains.domain.listing import Change, ListedBargain, payloads_for
from bargains.repository import Sweep
from contracts.events import BargainsChanged, PriceObservation
from contracts.events.v1 import (
    MAX_OBSERVATIONS,
    PageRef,
    PricesScrapedPayload,
    ProductObservedPayload,
    StoreGroupChangedPayload,
    Substitute,
    SubstitutionsChangedPayload,
)
from servicekit.kept_reads import KeptReads
from servicekit.sweeps import seen_pages
from tests.fakes.bargains import ANSWERED_BY_S1, InMemoryBargainsRepository, prices_of
from tests.fakes.unit_of_work import FakeUnitOfWork
from tests.unit.test_price_columns import _as_columns

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
POLICY = Policy()
Uow = FakeUnitOfWork[InMemoryBargainsRepository]


def _uow() -> Uow:
    return FakeUnitOfWork(InMemoryBargainsRepository())


def _batch(
    chain: str, store: str, days_ago: float, *rows: tuple[str, int, int | None]
) -> PricesScrapedPayload:
    """One page of a store's prices, seen some days before NOW."""
    at = NOW - timedelta(days=days_ago)
    return PricesScrapedPayload(
        chain=chain,
        store_id=store,
        source="ingest",
        page=PageRef(category="dairy", page=1),
        observations=tuple(
            PriceObservation(sku=sku, price_cents=price, was_price_cents=was, observed_at=at)
            for sku, price, was in rows
        ),
    )


def _daily(
    chain: str, store: str, sku: str, prices: Sequence[tuple[int, int | None]]
) -> list[PricesScrapedPayload]:
    """One batch a day, the last one an hour before NOW."""
    last = len(prices) - 1
    return [_batch(chain, store, last - day + 1 / 24, (sku, p, w)) for day, (p, w) in enumerate(prices)]


async def _fold(uow: Uow, batches: list[PricesScrapedPayload], now: datetime = NOW) -> None:
    async with uow:
        await service_layer.fold_prices(uow, batches, now=now, policy=POLICY)


def _announced(uow: Uow) -> list[tuple[str, str]]:
    """Return (change, bargain id) of every BargainsChanged published, in order."""
    return [
        (change.change, change.bargain.bargain_id)
        for event in uow.published_of(BargainsChanged)
        for change in event.payload.changes
    ]


async def test_a_price_drop_becomes_a_discount_announced_once() -> None:
    uow = _uow()
    await _fold(uow, _daily("c", "s1", "milk", [(400, None)] * 10 + [(300, None)]))

    listed = uow.repo.bargains["discount:c:s1:milk"]
    assert (listed.price_cents, listed.reference_cents, listed.category) == (300, 400, "dairy")
    assert listed.reason == "$3.00, 25% below the $4.00 charged on 10 of the 28 days before 2026-03-02"
    assert _announced(uow) == [("appeared", "discount:c:s1:milk")]

    # Seen again: same terms, nothing to announce, but the bargain rests on the latest sighting.
    await _fold(uow, [_batch("c", "s1", 0, ("milk", 300, None))])
    assert uow.repo.bargains["discount:c:s1:milk"].observed_at == NOW
    assert _announced(uow) == [("appeared", "discount:c:s1:milk")]

    # Back to the regular price: the bargain expires.
    await _fold(uow, [_batch("c", "s1", -0.01, ("milk", 400, None))], now=NOW + timedelta(hours=1))
    assert not uow.repo.bargains
    assert _announced(uow)[-1] == ("expired", "discount:c:s1:milk")


async def test_a_changed_discount_is_announced_as_changed() -> None:
    uow = _uow()
    await _fold(uow, _daily("c", "s1", "milk", [(400, None)] * 10 + [(300, None)]))
    await _fold(uow, [_batch("c", "s1", -0.01, ("milk", 280, None))], now=NOW + timedelta(hours=1))

    assert uow.repo.bargains["discount:c:s1:milk"].price_cents == 280
    assert _announced(uow) == [("appeared", "discount:c:s1:milk"), ("changed", "discount:c:s1:milk")]


async def test_an_illusory_discount_is_flagged_not_listed() -> None:
    uow = _uow()
    prices = [(400, None)] * 28 + [(500, None)] * 2 + [(400, 500)]
    await _fold(uow, _daily("c", "s1", "milk", prices))

    assert not uow.repo.bargains
    assert not _announced(uow)
    flag = uow.repo.flags["c", "s1", "milk", "illusory"]
    assert flag.reason.startswith("was $5.00 is a price raised on ")
    assert flag.observed_at == NOW - timedelta(hours=1)

    # A real price drop later replaces the flag.
    await _fold(uow, [_batch("c", "s1", 0, ("milk", 300, None))])
    assert not uow.repo.flags
    assert "discount:c:s1:milk" in uow.repo.bargains


async def test_an_outlier_is_flagged_never_a_bargain() -> None:
    uow = _uow()
    await _fold(uow, [_batch("c", store, 0.5, ("tea", 600, None)) for store in ("s1", "s2")])
    await _fold(uow, [_batch("c", "s3", 0, ("tea", 100, None))])

    flag = uow.repo.flags["c", "s3", "tea", "outlier"]
    assert flag.reason == "suspicious: 100 cents against a median of 600 cents"
    assert not uow.repo.bargains
    assert not _announced(uow)


async def test_an_outlier_is_not_judged_on_its_own_history() -> None:
    # A month at 400, then 100: a 75% "discount", but a third of what the chain charges.
    uow = _uow()
    for store in ("s1", "s2"):
        await _fold(uow, _daily("c", store, "milk", [(400, None)] * 28))
    await _fold(uow, _daily("c", "s3", "milk", [(400, None)] * 28 + [(100, None)]))

    assert set(uow.repo.flags) == {("c", "s3", "milk", "outlier")}
    assert not uow.repo.bargains


def _group(version: int, members: tuple[str, ...], reason: str = "formed") -> StoreGroupChangedPayload:
    return StoreGroupChangedPayload.model_validate(
        {
            "chain": "c",
            "group_id": "g1",
            "group_version": version,
            "anchor_store_id": "s1",
            "member_store_ids": members,
            "reason": reason,
        }
    )


async def test_a_members_bargains_give_way_to_its_anchors_on_a_group_change() -> None:
    uow = _uow()
    for store in ("s1", "m1"):
        await _fold(uow, _daily("c", store, "milk", [(400, None)] * 10 + [(300, None)]))
    assert set(uow.repo.bargains) == {"discount:c:s1:milk", "discount:c:m1:milk"}

    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1",)), now=NOW, policy=POLICY)

    assert set(uow.repo.bargains) == {"discount:c:s1:milk"}
    assert _announced(uow)[-1] == ("expired", "discount:c:m1:milk")
    # A member's prices still count toward the chain, but its anchor answers for it.
    await _fold(uow, [_batch("c", "m1", 0, ("milk", 250, None))])
    assert set(uow.repo.bargains) == {"discount:c:s1:milk"}
    assert sum(n for (_, sku, _, price), n in uow.repo.price_counts.items() if price == 250) == 1
    assert await uow.repo.stores_pricing(chain="c", sku="milk") == ["s1"]


async def _fold_kept(uow: Uow, batches: list[PricesScrapedPayload], runs: KeptReads[Run]) -> None:
    async with uow:
        await service_layer.fold_prices(uow, batches, now=NOW, policy=POLICY, anchor_runs=runs)


async def test_anchors_runs_are_kept_between_batches_while_the_anchor_stays_as_it_was() -> None:
    uow, runs = _uow(), KeptReads[Run]()
    await _fold(uow, [_batch("c", "s1", 1, ("milk", 400, None), ("tea", 300, None))])
    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1", "m2")), now=NOW, policy=POLICY)

    await _fold_kept(uow, [_batch("c", "m1", 0.5, ("milk", 400, None), ("tea", 280, None))], runs)
    assert uow.repo.runs_asked == 2
    # Another member's page: the anchor's runs come from the first read, not the database.
    await _fold_kept(uow, [_batch("c", "m2", 0.5, ("milk", 400, None), ("tea", 300, None))], runs)
    assert uow.repo.runs_asked == 2
    assert ("c", "m2", "milk") not in uow.repo.history
    assert ("c", "m2", "tea") not in uow.repo.history
    assert ("c", "m1", "tea") in uow.repo.history


async def test_an_anchor_whose_history_changed_is_read_again() -> None:
    uow, runs = _uow(), KeptReads[Run]()
    await _fold(uow, [_batch("c", "s1", 1, ("milk", 400, None))])
    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1", "m2")), now=NOW, policy=POLICY)
    await _fold_kept(uow, [_batch("c", "m1", 0.6, ("milk", 400, None))], runs)
    assert uow.repo.runs_asked == 1

    # The anchor's milk goes up (in a batch of its own, as another replica would write it).
    await _fold(uow, [_batch("c", "s1", 0.5, ("milk", 450, None))])
    await _fold_kept(uow, [_batch("c", "m2", 0.4, ("milk", 400, None))], runs)

    # The kept 400 no longer holds: read again, the member's 400 is its own.
    assert uow.repo.runs_asked == 2
    assert ("c", "m2", "milk") in uow.repo.history


@pytest.mark.parametrize("seed", range(3))
async def test_keeping_anchors_runs_changes_no_answer(seed: int) -> None:
    rng = random.Random(seed)
    plain, kept, runs = _uow(), _uow(), KeptReads[Run](limit=rng.choice([3, 1_000]))
    for uow in (plain, kept):
        async with uow:
            await service_layer.change_group(uow, _group(1, ("m1", "m2", "m3")), now=NOW, policy=POLICY)
    for day in range(6, 0, -1):
        zone = {sku: rng.choice([300, 350, 400]) for sku in ("milk", "tea", "eggs", "rice")}
        stores = ["s1", "m1", "m2", "m3"]
        rng.shuffle(stores)
        for store in stores:
            rows = [(sku, price if rng.random() < 0.8 else price + 10, None) for sku, price in zone.items()]
            batch = [_batch("c", store, day - rng.random() / 2, *rows)]
            await _fold(plain, batch)
            await _fold_kept(kept, batch, runs)
    assert kept.repo.runs_asked < plain.repo.runs_asked
    assert kept.repo.history == plain.repo.history
    assert kept.repo.price_counts == plain.repo.price_counts
    assert kept.repo.bargains == plain.repo.bargains


def _counted(uow: Uow, sku: str) -> dict[int, int]:
    """Return how many stores are counted at each price of a product, over all days."""
    counted: dict[int, int] = {}
    for (_, counted_sku, _, price), n in uow.repo.price_counts.items():
        if counted_sku == sku and n:
            counted[price] = counted.get(price, 0) + n
    return counted


async def test_a_members_price_its_anchor_shows_is_neither_kept_nor_counted_again() -> None:
    uow = _uow()
    await _fold(uow, [_batch("c", "s1", 1, ("milk", 400, None), ("tea", 300, None))])
    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1",)), now=NOW, policy=POLICY)

    await _fold(uow, [_batch("c", "m1", 0.5, ("milk", 400, None), ("tea", 280, None))])

    # Its milk is its anchor's, counted once with it; its tea is its own.
    assert ("c", "m1", "milk") not in uow.repo.history
    assert ("c", "m1", "tea") in uow.repo.history
    assert _counted(uow, "milk") == {400: 1}
    assert _counted(uow, "tea") == {300: 1, 280: 1}


async def test_a_members_own_price_gives_way_when_it_shows_its_anchors_again() -> None:
    uow = _uow()
    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1",)), now=NOW, policy=POLICY)
    await _fold(uow, [_batch("c", "s1", 3, ("milk", 400, None)), _batch("c", "m1", 2.9, ("milk", 380, None))])
    assert _counted(uow, "milk") == {400: 1, 380: 1}

    # The anchor, last seen 2.5 days before, is out of date: the member's 400 stays its own.
    await _fold(uow, [_batch("c", "m1", 0.4, ("milk", 400, None))])
    assert ("c", "m1", "milk") in uow.repo.history
    assert _counted(uow, "milk") == {400: 2}

    # Seen again with the anchor's fresh price: the anchor answers, the member's count leaves.
    await _fold(
        uow, [_batch("c", "s1", 0.3, ("milk", 400, None)), _batch("c", "m1", 0.2, ("milk", 400, None))]
    )
    assert ("c", "m1", "milk") not in uow.repo.history
    assert _counted(uow, "milk") == {400: 1}

    # A price of its own again starts a history anew.
    await _fold(uow, [_batch("c", "m1", 0.1, ("milk", 360, None))])
    assert [s.price_cents for s in uow.repo.history["c", "m1", "milk"].values()] == [360]
    assert _counted(uow, "milk") == {400: 1, 360: 1}


async def test_a_dropped_history_started_again_in_one_batch_is_written_anew() -> None:
    batched, one_by_one = _uow(), _uow()
    events = [
        _batch("c", "s1", 3, ("milk", 400, None)),
        _batch("c", "m1", 2.9, ("milk", 380, None)),
        _batch("c", "m1", 2.8, ("milk", 390, None)),
        _batch("c", "m1", 2.7, ("milk", 400, None)),
        _batch("c", "m1", 2.6, ("milk", 370, None)),
    ]
    for uow in (batched, one_by_one):
        async with uow:
            await service_layer.change_group(uow, _group(1, ("m1",)), now=NOW, policy=POLICY)
        await _fold(uow, events[:2])
    await _fold(batched, events[2:])
    for event in events[2:]:
        await _fold(one_by_one, [event])

    assert batched.repo.history == one_by_one.repo.history
    assert [s.price_cents for s in batched.repo.history["c", "m1", "milk"].values()] == [370]
    assert _counted(batched, "milk") == _counted(one_by_one, "milk") == {400: 1, 370: 1}


async def test_placing_members_drops_the_histories_their_anchor_answers() -> None:
    uow = _uow()
    await _fold(
        uow,
        [
            _batch("c", "s1", 1, ("milk", 400, None), ("tea", 300, None)),
            _batch("c", "m1", 1, ("milk", 400, None), ("tea", 280, None)),
            _batch("c", "m2", 1, ("milk", 400, None)),
            _batch("c", "m3", 1, ("milk", 400, None), ("tea", 300, None)),
        ],
    )
    assert _counted(uow, "milk") == {400: 4}

    async with uow:
        await service_layer.change_group(uow, _group(1, ("m1", "m3")), now=NOW, policy=POLICY)

    # m1 keeps its own tea; m3 charges what s1 does: nothing of it is kept.
    assert {key for key in uow.repo.history if key[1] in ("m1", "m3")} == {("c", "m1", "tea")}
    assert _counted(uow, "milk") == {400: 2}, "m2 is in no group: counted still"
    assert _counted(uow, "tea") == {300: 1, 280: 1}


async def test_an_older_group_version_changes_nothing_and_a_dissolved_group_frees_its_stores() -> None:
    uow = _uow()
    async with uow:
        await service_layer.change_group(uow, _group(2, ("m1",)), now=NOW, policy=POLICY)
        await service_layer.change_group(uow, _group(1, ("m2",)), now=NOW, policy=POLICY)
    assert await uow.repo.anchors_of(chain="c", store_ids=["m1", "m2"]) == {"m1": "s1", "m2": "m2"}

    async with uow:
        await service_layer.change_group(uow, _group(3, (), reason="dissolved"), now=NOW, policy=POLICY)
    assert await uow.repo.anchors_of(chain="c", store_ids=["m1", "s1"]) == {"m1": "m1", "s1": "s1"}
    assert not _announced(uow)


async def _two_chains_of_milk(uow: Uow) -> None:
    """Three stores of chain xb sell b-milk at 500; store a1 of chain xa sells a-milk at 400."""
    await _fold(uow, [_batch("xb", store, 0.5, ("b-milk", 500, None)) for store in ("b1", "b2", "b3")])
    await _fold(uow, [_batch("xa", "a1", 0.5, ("a-milk", 400, None))])
    assert not uow.repo.bargains, "nothing links the two products yet"


def _substitutes(*subs: tuple[str, str, str]) -> SubstitutionsChangedPayload:
    return SubstitutionsChangedPayload(
        chain="xa",
        sku="a-milk",
        substitutes=tuple(
            Substitute.model_validate(
                {"level": level, "chain": chain, "sku": sku, "score": 0.9, "reason": "="}
            )
            for level, chain, sku in subs
        ),
    )


async def test_cheaper_than_other_chains_via_an_identical_substitute() -> None:
    uow = _uow()
    await _two_chains_of_milk(uow)

    async with uow:  # a look-alike (L3) is no reference
        await service_layer.change_substitutes(
            uow, _substitutes(("L3", "xb", "b-milk")), now=NOW, policy=POLICY
        )
    assert not uow.repo.bargains

    async with uow:
        await service_layer.change_substitutes(
            uow, _substitutes(("L1", "xb", "b-milk")), now=NOW, policy=POLICY
        )
    found = uow.repo.bargains["cross_chain:xa:a1:a-milk"]
    assert (found.price_cents, found.reference_cents) == (400, 500)
    assert found.reason == "$4.00, 20% below the median $5.00 at 1 other chain"
    assert _announced(uow) == [("appeared", "cross_chain:xa:a1:a-milk")]

    async with uow:  # no longer identical: the bargain goes
        await service_layer.change_substitutes(uow, _substitutes(), now=NOW, policy=POLICY)
    assert not uow.repo.bargains
    assert _announced(uow)[-1] == ("expired", "cross_chain:xa:a1:a-milk")


def _product(chain: str, sku: str, barcode: str | None) -> ProductObservedPayload:
    return ProductObservedPayload(
        chain=chain, sku=sku, change="new", name="Full Cream Milk 2L", barcode=barcode, observed_at=NOW
    )


async def test_cheaper_than_other_chains_via_a_shared_barcode() -> None:
    uow = _uow()
    await _two_chains_of_milk(uow)
    async with uow:
        await service_layer.observe_product(
            uow, _product("xa", "a-milk", "9300000000017"), now=NOW, policy=POLICY
        )
    assert not uow.repo.bargains, "the other product's barcode is not known yet"

    async with uow:
        await service_layer.observe_product(
            uow, _product("xb", "b-milk", "9300000000017"), now=NOW, policy=POLICY
        )
    assert set(uow.repo.bargains) == {"cross_chain:xa:a1:a-milk"}

    # A description without a barcode keeps the one known.
    async with uow:
        await service_layer.observe_product(uow, _product("xb", "b-milk", None), now=NOW, policy=POLICY)
    assert uow.repo.products["xb", "b-milk"] == "9300000000017"
    assert set(uow.repo.bargains) == {"cross_chain:xa:a1:a-milk"}


async def test_stale_bargains_expire_and_empty_counts_are_forgotten() -> None:
    uow = _uow()
    history = _daily("c", "s1", "milk", [(400, None)] * 10 + [(300, None)])
    await _fold(uow, history[:-1])
    await _fold(uow, history[-1:])
    assert any(n == 0 for n in uow.repo.price_counts.values()), "the store left its old price's count"

    async with uow:
        assert await service_layer.expire(uow, now=NOW + timedelta(days=6), policy=POLICY) == 0
    assert set(uow.repo.bargains) == {"discount:c:s1:milk"}
    assert all(n != 0 for n in uow.repo.price_counts.values())

    async with uow:
        assert await service_layer.expire(uow, now=NOW + timedelta(days=7), policy=POLICY) == 1
    assert not uow.repo.bargains
    assert _announced(uow)[-1] == ("expired", "discount:c:s1:milk")


async def test_folding_a_batch_at_once_equals_folding_it_event_by_event() -> None:
    batched, one_by_one = _uow(), _uow()
    for uow in (batched, one_by_one):
        async with uow:
            await service_layer.change_group(uow, _group(1, ("m1",)), now=NOW, policy=POLICY)
    events = prices_of("c", at=NOW - timedelta(hours=3))
    await _fold(batched, events)
    for event in events:
        await _fold(one_by_one, [event])

    # What the events amount to, folded in arrival order by the domain alone.
    folded: dict[tuple[str, str, str], tuple[Segment, ...]] = {}
    for payload in events:
        for o in payload.sightings():
            key = ("c", payload.store_id, o.sku)
            folded[key] = fold(
                folded.get(key, ()),
                price_cents=o.price_cents,
                was_price_cents=o.was_price_cents,
                observed_at=o.observed_at,
            )
    del folded[("c", *ANSWERED_BY_S1)]
    history = batched.repo.history
    stored = {key: tuple(by_start[at] for at in sorted(by_start)) for key, by_start in history.items()}
    assert stored == folded
    # Not vacuous: a discount and a historical low, an illusory special and an outlier; none for a member.
    assert {(b.store_id, b.sku, b.kind) for b in batched.repo.bargains.values()} == {
        ("s1", "milk", "discount"),
        ("s1", "milk", "historical_low"),
        ("s1", "bread", "discount"),
        ("s1", "bread", "historical_low"),
        ("s2", "milk", "discount"),
        ("s2", "milk", "historical_low"),
    }
    assert set(batched.repo.flags) == {("c", "s1", "tea", "illusory"), ("c", "s3", "milk", "outlier")}
    assert sorted(_announced(batched)) == sorted(("appeared", b) for b in batched.repo.bargains)

    assert batched.repo.history == one_by_one.repo.history
    assert {k: n for k, n in batched.repo.price_counts.items() if n} == {
        k: n for k, n in one_by_one.repo.price_counts.items() if n
    }
    assert batched.repo.flags == one_by_one.repo.flags
    # A bargain rests on its price's latest sighting however the events were batched.
    assert batched.repo.bargains == one_by_one.repo.bargains


async def test_an_error_leaves_nothing_behind() -> None:
    uow = _uow()
    await _fold(uow, _daily("c", "s1", "milk", [(400, None)] * 28))
    before = copy.deepcopy(uow.repo)

    async def fold_then_fail() -> None:
        async with uow:
            await service_layer.fold_prices(
                uow, [_batch("c", "s1", 0, ("milk", 300, None))], now=NOW, policy=POLICY
            )
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        await fold_then_fail()
    assert uow.repo == before
    assert uow.rollbacks == 1


def _listed(n: int, score: float = 0.5) -> ListedBargain:
    return ListedBargain(
        bargain_id=f"discount:c:s1:p{n}",
        chain="c",
        store_id="s1",
        sku=f"p{n}",
        category=None,
        kind="discount",
        price_cents=100,
        reference_cents=200,
        score=score,
        reason="x" * 600,
        observed_at=NOW,
    )


def test_changes_are_announced_per_store_in_chunks_within_the_contract() -> None:
    changes = [Change("appeared", _listed(n)) for n in range(MAX_OBSERVATIONS * 2 + 1)]
    changes.append(Change("changed", replace(_listed(0), store_id="s2", score=1.7)))

    payloads = payloads_for(changes)

    assert [(p.store_id, len(p.changes)) for p in payloads] == [
        ("s1", MAX_OBSERVATIONS),
        ("s1", MAX_OBSERVATIONS),
        ("s1", 1),
        ("s2", 1),
    ]
    assert payloads[-1].changes[0].bargain.score == 1.0
    assert len(payloads[0].changes[0].bargain.reason) == 500


def test_the_segments_saved_are_those_a_fold_added_or_extended() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    old: tuple[Segment, ...] = ()
    for day, price in enumerate((300, 300, 250, 250, 300)):
        old = fold(old, price_cents=price, was_price_cents=None, observed_at=start + timedelta(days=day))
    for price, days in ((300, 5), (310, 5), (310, 6), (300, 3)):
        new = fold(old, price_cents=price, was_price_cents=None, observed_at=start + timedelta(days=days))
        extended, appended = service_layer.segments_to_save(old, new)
        assert [s for s in (extended, *appended) if s is not None] == [s for s in new if s not in old]
        # Only the stored last segment is ever extended: same start, a later end.
        assert extended is None or (extended.starts_at, extended.price_cents) == (
            old[-1].starts_at,
            old[-1].price_cents,
        )
    # Folded twice in one batch: the last one extended, then a new one appended and extended.
    twice = fold(old, price_cents=300, was_price_cents=None, observed_at=start + timedelta(days=5))
    twice = fold(twice, price_cents=280, was_price_cents=None, observed_at=start + timedelta(days=6))
    twice = fold(twice, price_cents=280, was_price_cents=None, observed_at=start + timedelta(days=7))
    extended, appended = service_layer.segments_to_save(old, twice)
    assert extended == twice[-2]
    assert appended == (twice[-1],)
    assert (appended[0].starts_at, appended[0].ends_at) == (
        start + timedelta(days=6),
        start + timedelta(days=7),
    )
    assert service_layer.segments_to_save((), old) == (None, old)


def test_a_price_without_a_label_shares_the_empty_label() -> None:
    plain = _batch("c", "s1", 1, ("p1", 300, None)).sightings()[0]
    assert service_layer.label_of(plain) is NO_LABEL
    member = plain._replace(member_price_cents=250)
    assert service_layer.label_of(member) == Label(member_price_cents=250)


def _shelf_page(store: str, days_ago: float, shelf: dict[str, int]) -> PricesScrapedPayload:
    """A store's page of prices one by one, seen at one moment."""
    return _batch("c", store, days_ago, *((sku, price, None) for sku, price in shelf.items()))


async def test_pages_seen_again_unchanged_move_their_sweep_and_answer_as_prices_one_by_one() -> None:
    by_columns, by_rows = _uow(), _uow()
    shelves = {
        "s1": {"milk": 400, "tea": 300, "bread": 200},
        "s2": {"milk": 400, "tea": 310, "bread": 210},
        "s3": {"milk": 120, "tea": 300, "bread": 200},  # its milk an outlier against the median
    }
    days = [40, 39, 35, 30, 25, 20, 15, 12, 10, 8, 5, 3, 2, 1]
    for day in days:
        if day == 10:
            shelves["s1"]["milk"] = 300  # a discount, listed while the page is seen again unchanged
        if day == 3:
            shelves["s1"]["milk"] = 400  # and gone
        pages = [_shelf_page(store, day, shelf) for store, shelf in shelves.items()]
        await _fold_alike(by_columns, by_rows, pages, day)
    assert _announced(by_columns) == _announced(by_rows)
    assert ("appeared", "discount:c:s1:milk") in _announced(by_columns)
    assert ("expired", "discount:c:s1:milk") in _announced(by_columns)
    assert set(by_columns.repo.flags) == {("c", "s3", "milk", "outlier")}
    # The first pages were copied in, and every page but s1's on the days its milk changed swept.
    assert by_columns.repo.sweeps_moved == 3 * (len(days) - 1) - 2
    assert by_rows.repo.sweeps_moved == 0
    known = await by_columns.repo.pages_known(chain="c", store_ids=["s1", "s2", "s3", "s4"])
    assert sorted((store, sweep.lone) for (store, _), sweep in known.sweeps.items()) == [
        ("s1", False),
        ("s2", True),
        ("s3", True),
    ]
    assert known.unpriced == {"s4"}


async def _fold_alike(by_columns: Uow, by_rows: Uow, pages: list[PricesScrapedPayload], day: float) -> None:
    """Fold a day's pages as columns into one repository and one by one into the other; compare them."""
    now = NOW - timedelta(days=day, hours=-1)
    await _fold(by_columns, [_as_columns(page) for page in pages], now=now)
    await _fold(by_rows, pages, now=now)
    assert by_columns.repo.history == by_rows.repo.history, day
    assert by_columns.repo.price_counts == by_rows.repo.price_counts, day
    assert by_columns.repo.bargains == by_rows.repo.bargains, day
    assert by_columns.repo.flags == by_rows.repo.flags, day


async def test_a_stores_pages_in_one_batch_each_take_their_way_as_prices_one_by_one() -> None:
    by_columns, by_rows = _uow(), _uow()
    shelves = {
        "s1": {"milk": 400, "tea": 300, "bread": 200, "eggs": 500},
        "s2": {"milk": 400, "tea": 310, "bread": 210, "eggs": 520},
        "s3": {"milk": 120, "tea": 300, "bread": 200, "eggs": 510},  # its milk an outlier
    }
    split = (("milk", "tea"), ("bread",), ("eggs",))
    days = [40, 39, 35, 30, 25, 20, 15, 12, 10, 8, 5, 3, 2, 1]
    for day in days:
        if day == 10:
            shelves["s1"]["milk"] = 300  # a discount on s1's first page, its others unchanged
        if day == 3:
            shelves["s1"]["milk"] = 400  # and gone
        pages = [
            _shelf_page(store, day + (0.1 if skus == ("bread",) else 0), {sku: shelf[sku] for sku in skus})
            for store, shelf in shelves.items()
            for skus in split
        ]
        if day == 5:  # s3's tea on two pages: the store's pages by runs
            pages.append(_shelf_page("s3", day, {"tea": 300, "eggs": 510}))
        await _fold_alike(by_columns, by_rows, pages, day)
    assert _announced(by_columns) == _announced(by_rows)
    assert ("appeared", "discount:c:s1:milk") in _announced(by_columns)
    assert set(by_columns.repo.flags) == {("c", "s3", "milk", "outlier")}
    # First pages copied in; then every page swept but s1's first on the days its milk changed, and
    # s3's on the day its pages shared tea and the day after (their sweeps kept nothing then).
    assert by_columns.repo.sweeps_moved == 9 * (len(days) - 1) - 2 - 3 - 3
    assert by_rows.repo.sweeps_moved == 0


def test_a_stores_own_pages_share_no_product_in_the_batch_and_the_store_is_its_own_anchor() -> None:
    batches = [_as_columns(_shelf_page(store, 1, {"milk": 400})) for store in ("s1", "s2", "s2", "m1")]
    rows = _batch("c", "s3", 1, ("milk", 400, None))  # prices one by one: no page seen whole
    seen = seen_pages([*batches, rows])
    anchors = {"s1": "s1", "s2": "s2", "m1": "s1", "s3": "s3", "s4": "s4", "s5": "s5", "s6": "s6"}
    assert list(service_layer.own_pages([*batches, rows], seen, anchors)) == [0], "s2's same page twice"
    several = [
        _as_columns(_shelf_page("s4", 1, {"milk": 400, "tea": 300})),
        _as_columns(_shelf_page("s5", 1, {"milk": 400})),
        _as_columns(_shelf_page("s4", 2, {"bread": 200})),  # another moment: each page its own way
        _as_columns(_shelf_page("s5", 1, {"milk": 410, "tea": 300})),  # milk on two pages
        _as_columns(_shelf_page("s4", 1, {"eggs": 500})),
        _as_columns(_shelf_page("s6", 1, {"milk": 400})),
        _shelf_page("s6", 1, {"tea": 300}),  # prices one by one
    ]
    own = service_layer.own_pages(several, seen_pages(several), anchors)
    assert sorted(own) == [0, 2, 4]
    assert [own[i].skus for i in (0, 2, 4)] == [("milk", "tea"), ("bread",), ("eggs",)]


def test_a_page_is_unchanged_when_its_sweep_keeps_what_it_shows_from_an_earlier_moment() -> None:
    page = seen_pages([_as_columns(_shelf_page("s1", 1, {"milk": 400, "tea": 300}))])[0]
    assert page is not None
    before = page.seen_at - timedelta(days=1)

    def unchanged(sweep: Sweep) -> bool:
        return service_layer.unchanged_pages({7: page}, {("s1", page.page): sweep}) == {7: sweep}

    assert unchanged(Sweep(before, page.shelves, lone=True))
    assert unchanged(Sweep(before, page.shelves, lone=False))
    assert not unchanged(Sweep(before, page.shelves + 1, lone=True)), "something on the page changed"
    assert not unchanged(Sweep(page.seen_at, page.shelves, lone=True)), "seen at that moment already"
    assert service_layer.unchanged_pages({7: page}, {}) == {}, "no sweep keeps what it showed"
