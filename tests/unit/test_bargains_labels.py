"""A shelf label beside the price: a multi-buy is no discount, member prices are labelled, kg is per kg."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bargains import service_layer
from bargains.domain.bargains import Policy, assess
from bargains.domain.history import Label, Segment, fold
from contracts.events import PriceObservation
from contracts.events.v1 import MultiBuy, PageRef, PricesScrapedPayload, ProductObservedPayload
from tests.fakes.bargains import InMemoryBargainsRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
POLICY = Policy()
Uow = FakeUnitOfWork[InMemoryBargainsRepository]
REGULAR = [(500, None, Label())] * 20
MULTIBUY = Label(multibuy_quantity=2, multibuy_total_cents=700)
MEMBER = Label(member_price_cents=400)
BY_KG = Label(sold_by="kg")


def _daily(days: Sequence[tuple[int, int | None, Label]]) -> tuple[Segment, ...]:
    """Fold one observation a day, the last one an hour before NOW."""
    history: tuple[Segment, ...] = ()
    last = len(days) - 1
    for day, (price, was, label) in enumerate(days):
        at = NOW - timedelta(days=last - day, hours=1)
        history = fold(history, price_cents=price, was_price_cents=was, observed_at=at, label=label)
    return history


# --- the pure assessment ---------------------------------------------------------------------


def test_a_label_change_starts_a_segment_and_is_kept_with_it() -> None:
    history = _daily(REGULAR[:3] + [(500, None, MULTIBUY)] * 2 + [(500, None, Label())])

    assert [segment.label for segment in history] == [Label(), MULTIBUY, Label()]
    assert {segment.price_cents for segment in history} == {500}


def test_a_multi_buy_at_the_regular_price_is_no_bargain() -> None:
    # 2 for $7.00 is $3.50 each, 30% under the shelf's $5.00: still no drop of the shelf price.
    assessment = assess(_daily([*REGULAR, (500, None, MULTIBUY)]), now=NOW, policy=POLICY)

    assert assessment.bargains == ()
    assert assessment.flags == ()


def test_a_multi_buy_beside_a_real_discount_is_named_and_not_counted() -> None:
    history = _daily([*REGULAR, (400, 500, MULTIBUY)])

    bargain, low = assess(history, now=NOW, policy=POLICY).bargains

    assert (bargain.kind, bargain.price_cents, bargain.reference_cents) == ("discount", 400, 500)
    assert bargain.score == pytest.approx(0.2)
    assert bargain.reason.endswith("; multi-buy 2 for $7.00 not counted")
    assert not bargain.members_only
    assert low.kind == "historical_low"
    assert low.reason.endswith("; multi-buy 2 for $7.00 not counted")


def test_a_member_price_is_a_members_only_bargain_against_the_regular_shelf_price() -> None:
    history = _daily([*REGULAR, (500, None, MEMBER)])

    (bargain,) = assess(history, now=NOW, policy=POLICY).bargains

    assert bargain.members_only
    assert (bargain.kind, bargain.price_cents, bargain.reference_cents) == ("discount", 400, 500)
    assert bargain.reason.startswith("members only: $4.00, 20% below the $5.00 charged on")
    assert bargain.reason.endswith("everyone else pays $5.00")


def test_a_member_price_close_to_the_shelf_price_is_no_bargain() -> None:
    history = _daily([*REGULAR, (500, None, Label(member_price_cents=480))])

    assert assess(history, now=NOW, policy=POLICY).bargains == ()


def test_a_shelf_discount_with_a_member_price_names_what_members_pay() -> None:
    history = _daily([*REGULAR, (400, 500, Label(member_price_cents=350))])

    bargain, _ = assess(history, now=NOW, policy=POLICY).bargains

    assert not bargain.members_only
    assert bargain.price_cents == 400
    assert bargain.reason.endswith("; members pay $3.50")


def test_an_item_sold_by_weight_is_compared_per_kg_only() -> None:
    # Sold each at $5.00 for weeks, then loose at $4.00/kg: a different measure, not a 20% drop.
    changed_measure = _daily([*REGULAR, (400, None, BY_KG)])
    assert assess(changed_measure, now=NOW, policy=POLICY).bargains == ()

    per_kg = _daily([(500, None, BY_KG)] * 20 + [(400, None, BY_KG)])
    bargain, _ = assess(per_kg, now=NOW, policy=POLICY).bargains
    assert bargain.kind == "discount"
    assert bargain.reason.startswith("$4.00/kg, 20% below the $5.00/kg charged on")


# --- through the service layer ---------------------------------------------------------------


def _observation(price: int, at: datetime, label: Label) -> PriceObservation:
    """Observe milk at a price with what its label shows."""
    multibuy = (
        None
        if label.multibuy_quantity is None or label.multibuy_total_cents is None
        else MultiBuy(quantity=label.multibuy_quantity, total_cents=label.multibuy_total_cents)
    )
    return PriceObservation(
        sku="milk",
        price_cents=price,
        observed_at=at,
        multibuy=multibuy,
        member_price_cents=label.member_price_cents,
        sold_by=label.sold_by,
    )


def _batches(
    chain: str, store: str, days: Sequence[tuple[int, Label]], *, hours: float = 1
) -> list[PricesScrapedPayload]:
    """One page a day of a store's milk, the last `hours` before NOW."""
    last = len(days) - 1
    return [
        PricesScrapedPayload(
            chain=chain,
            store_id=store,
            source="scrape",
            page=PageRef(category="dairy", page=1),
            observations=(_observation(price, NOW - timedelta(days=last - day, hours=hours), label),),
        )
        for day, (price, label) in enumerate(days)
    ]


async def _fold(uow: Uow, batches: list[PricesScrapedPayload]) -> None:
    async with uow:
        await service_layer.fold_prices(uow, batches, now=NOW, policy=POLICY)


async def test_a_member_price_is_listed_under_its_own_id_and_a_multi_buy_not_at_all() -> None:
    uow: Uow = FakeUnitOfWork(InMemoryBargainsRepository())
    await _fold(uow, _batches("c", "s1", [(500, Label())] * 20 + [(500, MULTIBUY)], hours=2))
    assert uow.repo.bargains == {}

    await _fold(uow, _batches("c", "s1", [(500, MEMBER)], hours=1))

    assert set(uow.repo.bargains) == {"members:c:s1:milk"}
    listed = uow.repo.bargains["members:c:s1:milk"]
    assert (listed.kind, listed.price_cents) == ("discount", 400)
    assert listed.reason.startswith("members only:")
    stored = uow.repo.history["c", "s1", "milk"]
    assert [segment.label for segment in stored.values()][-2:] == [MULTIBUY, MEMBER]


async def test_cross_chain_prices_are_compared_only_when_sold_the_same_way() -> None:
    uow: Uow = FakeUnitOfWork(InMemoryBargainsRepository())
    async with uow:
        for chain in ("xa", "xb"):
            await service_layer.observe_product(
                uow,
                ProductObservedPayload(
                    chain=chain,
                    sku="milk",
                    change="new",
                    name="Bananas",
                    barcode="9300000000017",
                    observed_at=NOW,
                ),
                now=NOW,
                policy=POLICY,
            )
    # xb sells them each at $5.00; xa by the kilogram at $4.00/kg: no cross-chain bargain.
    await _fold(uow, _batches("xb", "b1", [(500, Label())], hours=3))
    await _fold(uow, _batches("xa", "a1", [(400, BY_KG)], hours=3))
    assert not any(key.startswith("cross_chain") for key in uow.repo.bargains)

    # Once xb sells them by the kilogram too, the prices compare.
    await _fold(uow, _batches("xb", "b1", [(500, BY_KG)], hours=2))
    await _fold(uow, _batches("xa", "a1", [(400, BY_KG)], hours=1))
    found = uow.repo.bargains["cross_chain:xa:a1:milk"]
    assert found.reason == "$4.00/kg, 20% below the median $5.00/kg at 1 other chain"
