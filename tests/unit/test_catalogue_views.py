"""What the catalogue answers of a price: unit prices by the Unit Pricing Code, the shop's own, the tree."""

from datetime import UTC, datetime

import pytest

from catalogue.queries import category_tree
from catalogue.repository import PriceRow, ProductRow
from catalogue.views import unit_pricing

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _product(size: str | None, shared: str | None = "pantry/cereal") -> ProductRow:
    return ProductRow(
        chain="c",
        sku="wb",
        name="Weet-Bix",
        brand=None,
        size=size,
        category=None,
        shared_category=shared,
        barcode=None,
        url=None,
        search_text="weet bix weetbix",
        observed_at=AT,
    )


def _price(cents: int, *, stated: tuple[int, int, str] | None = None, sold_by: str = "each") -> PriceRow:
    return PriceRow(
        chain="c",
        store_id="s1",
        sku="wb",
        price_cents=cents,
        was_price_cents=None,
        available=True,
        member_price_cents=None,
        multibuy_quantity=None,
        multibuy_total_cents=None,
        sold_by=sold_by,
        stated_cents=stated[0] if stated else None,
        stated_quantity=stated[1] if stated else None,
        stated_unit=stated[2] if stated else None,
        stated_text="label" if stated else None,
        observed_at=AT,
    )


def test_a_unit_price_is_worked_out_from_price_and_size_beside_the_shops_own() -> None:
    pricing = unit_pricing(_price(450, stated=(78, 100, "g")), _product("575g"))

    assert pricing.unit_price is not None
    assert pricing.unit_price.text == "$0.78 per 100g"
    assert [a.text for a in pricing.alternatives] == ["$7.83 per 1kg"]
    assert pricing.stated is not None
    assert pricing.stated.verdict == "match"
    assert not pricing.mismatch


def test_a_stated_unit_price_that_price_and_size_cannot_give_is_flagged() -> None:
    pricing = unit_pricing(_price(450, stated=(150, 100, "g")), _product("575g"))

    assert pricing.mismatch
    assert pricing.stated is not None
    assert "78.26" in pricing.stated.reason


def test_produce_is_priced_per_kg_and_an_unknown_size_has_no_unit_price() -> None:
    produce = unit_pricing(_price(300), _product("500g", shared="produce/apples")).unit_price
    loose = unit_pricing(_price(399, sold_by="kg"), _product(None, shared=None)).unit_price

    assert produce is not None
    assert produce.text == "$6.00 per 1kg"
    assert loose is not None
    assert loose.text == "$3.99 per 1kg"
    assert unit_pricing(_price(300), _product(None, shared=None)).unit_price is None


def test_the_category_tree_counts_what_sits_in_a_node_and_below_it() -> None:
    tree = category_tree(
        [("dairy", 1, 0), ("dairy/cheese", 4, 1), ("dairy/milk", 2, 2), ("pantry/cereal", 3, 0)]
    )

    assert [(n.path, n.products, n.bargains) for n in tree] == [("dairy", 7, 3), ("pantry", 3, 0)]
    assert [(n.name, n.products) for n in tree[0].children] == [("cheese", 4), ("milk", 2)]
