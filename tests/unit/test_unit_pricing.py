"""Pack sizes and unit prices as the Unit Pricing Code sets them, and the shop's own unit price checked."""

from fractions import Fraction

import pytest

from catalogue.domain.unit_pricing import (
    Basis,
    PackSize,
    alternative_views,
    check_stated,
    parse_pack_size,
    price_on,
    size_problem,
    sold_per_kg,
    unit_basis,
    unit_price,
)
from contracts.events.v1 import StatedUnitPrice

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "dimension", "amount", "pack", "approximate"),
    [
        ("2L", "volume", 2000, 1, False),
        ("500g", "mass", 500, 1, False),
        ("1.5kg", "mass", 1500, 1, False),
        ("1,5 kg", "mass", 1500, 1, False),
        ("6 x 375mL", "volume", 2250, 6, False),
        ("6x375ml", "volume", 2250, 6, False),
        ("6 \u00d7 375mL", "volume", 2250, 6, False),
        ("150g x 4", "mass", 600, 4, False),
        ("4 pack x 110g", "mass", 440, 4, False),
        ("24pk", "count", 24, 1, False),
        ("12 pack", "count", 12, 1, False),
        ("each", "count", 1, 1, False),
        ("Each", "count", 1, 1, False),
        ("1 ea", "count", 1, 1, False),
        ("Approx. 1.2kg", "mass", 1200, 1, True),
        ("approx. 125g", "mass", 125, 1, True),
        ("6x200ml 6 pack", "volume", 1200, 6, False),
        ("375ml 10 pack", "volume", 3750, 10, False),
        ("450g 6 pack", "mass", 450, 1, False),
        ("1.25 litres", "volume", 1250, 1, False),
        ("30m", "length", 30, 1, False),
        ("100 pack", "count", 100, 1, False),
    ],
)
def test_sizes_as_shops_write_them_are_read(
    text: str, dimension: str, amount: int, pack: int, approximate: bool
) -> None:
    size = parse_pack_size(text)
    assert size is not None
    assert (size.dimension, size.amount, size.pack, size.approximate) == (
        dimension,
        Fraction(amount),
        pack,
        approximate,
    )


def test_per_kg_means_sold_by_weight_not_a_one_kilogram_pack() -> None:
    loose = parse_pack_size("per kg")
    pack = parse_pack_size("1kg")
    assert loose is not None
    assert loose.by_weight
    assert pack is not None
    assert not pack.by_weight
    assert pack.amount == 1000


def test_the_name_speaks_when_the_size_does_not() -> None:
    size = parse_pack_size(None, "Coca-Cola Classic 1.25L")
    assert size == PackSize("volume", Fraction(1250))
    # The size text wins over a name that also states one.
    assert parse_pack_size("500g", "Pears In Jelly 4 Pack") == PackSize("mass", Fraction(500))


def test_a_count_left_at_the_end_of_the_name_multiplies_the_size() -> None:
    size = parse_pack_size("150g", "Brooklea Yogurt Classics 6 x")
    assert size == PackSize("mass", Fraction(900), 6)


@pytest.mark.parametrize(
    ("size", "name", "problem"),
    [
        ("0.25", None, "has no unit"),
        (None, "Tasty Cheese", "no size given"),
        ("large", "Eggs", "not a quantity"),
    ],
)
def test_an_unreadable_size_says_why(size: str | None, name: str | None, problem: str) -> None:
    assert parse_pack_size(size, name) is None
    reason = size_problem(size, name)
    assert reason is not None
    assert problem in reason


def test_a_readable_size_has_no_problem() -> None:
    assert size_problem("2L") is None


@pytest.mark.parametrize(
    ("size", "price", "text"),
    [
        ("2L", 320, "$0.16 per 100mL"),
        ("500g", 450, "$0.90 per 100g"),
        ("6 x 375mL", 900, "$0.40 per 100mL"),
        ("12 pack", 650, "$0.54 per item"),
        ("40 pack", 400, "$0.10 per item"),
        ("41 pack", 410, "$10.00 per 100 items"),
        ("30m", 450, "$0.15 per 1m"),
    ],
)
def test_the_codes_general_units(size: str, price: int, text: str) -> None:
    pack = parse_pack_size(size)
    assert pack is not None
    assert unit_price(price, pack).text == text


def test_cents_are_rounded_half_up_as_shown_on_a_label() -> None:
    # 225 cents for 1 kg is 22.5 cents per 100 g: the label shows 23, Python's round would show 22.
    priced = unit_price(225, PackSize("mass", Fraction(1000)))
    assert priced.cents == 23
    assert priced.exact == pytest.approx(22.5)


@pytest.mark.parametrize(
    ("category", "per_kg"),
    [("produce/fruit", True), ("meat", True), ("deli/cheese", True), ("dairy/cheese", False), (None, False)],
)
def test_produce_meat_and_deli_are_priced_per_kilogram(category: str | None, per_kg: bool) -> None:
    assert sold_per_kg(category) is per_kg
    basis = unit_basis(PackSize("mass", Fraction(500)), shared_category=category)
    assert basis == (Basis(1, "kg") if per_kg else Basis(100, "g"))


def test_mince_in_a_500g_tray_is_priced_per_kilogram() -> None:
    pack = parse_pack_size("500g")
    assert pack is not None
    assert unit_price(750, pack, shared_category="meat/mince").text == "$15.00 per 1kg"


def test_a_loose_item_sold_by_the_kilogram_is_its_shelf_price_per_kilogram() -> None:
    # The shelf price is per kg; any size the shop writes (one banana) does not change it.
    priced = unit_price(399, PackSize("count", Fraction(1)), sold_by="kg")
    assert priced.text == "$3.99 per 1kg"
    assert [view.text for view in alternative_views(399, PackSize("count", Fraction(1)), sold_by="kg")] == [
        "$3.99 per 1kg"
    ]


def test_alternative_views_per_kilogram_and_per_litre() -> None:
    milk, flour, eggs = (
        PackSize("volume", Fraction(2000)),
        PackSize("mass", Fraction(500)),
        PackSize("count", Fraction(12)),
    )
    assert [view.text for view in alternative_views(320, milk)] == ["$1.60 per 1L"]
    assert [view.text for view in alternative_views(200, flour)] == ["$4.00 per 1kg"]
    assert alternative_views(650, eggs) == ()


def test_a_basis_of_another_dimension_does_not_apply() -> None:
    assert price_on(650, PackSize("count", Fraction(12)), Basis(1, "kg")) is None


def test_stated_unit_price_within_the_shops_rounding_matches() -> None:
    pack = PackSize("volume", Fraction(1250))
    # 3.00 dollars for 1.25 L is exactly 2.40 per litre; 24 cents per 100 mL.
    for stated in (
        StatedUnitPrice(cents=240, quantity=1, unit="l", text="$2.40 per 1L"),
        StatedUnitPrice(cents=24, quantity=100, unit="ml", text="$0.24 per 100mL"),
    ):
        check = check_stated(300, pack, stated)
        assert check.verdict == "match", check.reason


def test_a_truncated_stated_price_still_matches() -> None:
    # 4.35 dollars for 370 g is 117.57 cents per 100 g: rounded 118, cut 117; both come from this price.
    pack = PackSize("mass", Fraction(370))
    for cents in (117, 118):
        stated = StatedUnitPrice(cents=cents, quantity=100, unit="g", text=f"{cents}c per 100g")
        assert check_stated(435, pack, stated).verdict == "match"
    stated = StatedUnitPrice(cents=116, quantity=100, unit="g", text="$1.16 per 100g")
    assert check_stated(435, pack, stated).verdict == "mismatch"


def test_a_stated_price_a_cent_or_more_away_is_a_mismatch() -> None:
    stated = StatedUnitPrice(cents=90, quantity=100, unit="g", text="$0.90 per 100g")
    check = check_stated(450, PackSize("mass", Fraction(400)), stated)
    assert check.verdict == "mismatch"
    assert check.ours is not None
    assert check.ours.cents == 113
    assert "90c per 100g" in check.reason


def test_a_stated_price_per_kilogram_of_a_counted_pack_is_not_comparable() -> None:
    stated = StatedUnitPrice(cents=500, quantity=1, unit="kg", text="$5.00 per 1kg")
    check = check_stated(650, PackSize("count", Fraction(12)), stated)
    assert check.verdict == "not_comparable"
    assert check.ours is None


def test_an_approximate_pack_is_not_judged() -> None:
    stated = StatedUnitPrice(cents=1500, quantity=1, unit="kg", text="$15.00 per 1kg")
    check = check_stated(1820, PackSize("mass", Fraction(1300), approximate=True), stated)
    assert check.verdict == "not_comparable"
    assert check.ours is not None  # still shown beside the shop's


def test_a_loose_item_is_judged_without_a_pack_size() -> None:
    stated = StatedUnitPrice(cents=399, quantity=1, unit="kg", text="$3.99 per 1kg")
    assert check_stated(399, None, stated, sold_by="kg").verdict == "match"
    assert check_stated(399, None, stated).verdict == "not_comparable"


@pytest.mark.parametrize(
    ("pack", "text"),
    [
        (PackSize("volume", Fraction(2250), 6), "6 x 375mL"),
        (PackSize("mass", Fraction(1500)), "1.5kg"),
        (PackSize("mass", Fraction(1200), approximate=True), "approx. 1.2kg"),
        (PackSize("count", Fraction(24)), "24 items"),
        (PackSize("mass", Fraction(1000), by_weight=True), "per kg"),
    ],
)
def test_sizes_are_described_back(pack: PackSize, text: str) -> None:
    assert pack.describe() == text
