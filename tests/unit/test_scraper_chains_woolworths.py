"""The Woolworths parsers against bodies of the web API's real shape (tests/fixtures/chains/woolworths)."""

from datetime import UTC, datetime

import pytest

from scraper.domain.chains import ParsedPage, ShopAnswerError, woolworths
from scraper.domain.ingest import Accepted, Rejected, validate_row
from scraper.domain.planning import StoreInfo
from tests.fakes.chain_sites import fixture

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SITE = "https://www.woolworths.com.au"


def _page(name: str, page: int = 1, expected_total: int | None = None) -> ParsedPage:
    body = fixture("woolworths", name)
    return woolworths.parse_page(body, page=page, expected_total=expected_total, site=SITE)


def _verdicts(name: str, page: int = 1) -> dict[str, Accepted | Rejected]:
    return {
        str(row["sku"]): validate_row(
            {**row, "category": "c"}, default_chain="woolworths", default_store="1234", now=NOW
        )
        for row in _page(name, page).rows
    }


def _accepted(verdicts: dict[str, Accepted | Rejected], sku: str) -> Accepted:
    verdict = verdicts[sku]
    assert isinstance(verdict, Accepted), verdict
    return verdict


def test_stores_are_the_supermarkets() -> None:
    stores = woolworths.parse_stores(fixture("woolworths", "stores.json"))
    assert stores == [
        StoreInfo("1234", "Town Hall", "NSW", "2000"),
        StoreInfo("3370", "Richmond", "VIC", "3121"),
    ]


def test_categories_leave_the_specials_group_and_the_checkout_aisle_out() -> None:
    tree = woolworths.parse_categories(fixture("woolworths", "categories.json"))
    assert [(c.slug, c.node_id) for c in tree] == [
        ("dairy-eggs-fridge", "1_6E4F4E4"),
        ("fruit-veg", "1-E5BEE36E"),
        ("seasonal", "1_8A2E9C1"),
    ]
    assert [c.pages(woolworths.PAGE_SIZE) for c in tree] == [2, 1, 0]


def test_the_fulfilment_answer_is_checked() -> None:
    woolworths.parse_fulfilment(fixture("woolworths", "fulfilment.json"), "1234")
    with pytest.raises(ShopAnswerError, match="refused store 9"):
        woolworths.parse_fulfilment({"IsSuccessful": False}, "9")


def test_a_page_skips_bundles_and_reads_every_label() -> None:
    page = _page("browse-dairy-eggs-fridge-page1.json")
    assert page.total == 40
    assert [row["sku"] for row in page.rows] == [888140, 153266, 262783, 731209, 657014]
    verdicts = _verdicts("browse-dairy-eggs-fridge-page1.json")

    milk = _accepted(verdicts, "888140")
    assert milk.observation.was_price_cents is None, "WasPrice repeats Price when not on special"
    assert milk.observation.unit_price is not None
    assert (milk.observation.unit_price.cents, milk.observation.unit_price.unit) == (155, "l")
    assert milk.product is not None
    assert milk.product.barcode == "9300633603201"
    assert milk.product.url == f"{SITE}/shop/productdetails/888140/woolworths-full-cream-milk"

    chocolate = _accepted(verdicts, "153266").observation
    assert (chocolate.price_cents, chocolate.was_price_cents) == (450, 600)

    yoghurt = _accepted(verdicts, "262783").observation
    assert yoghurt.multibuy is not None
    assert (yoghurt.multibuy.quantity, yoghurt.multibuy.total_cents) == (
        2,
        1200,
    )
    assert yoghurt.was_price_cents is None

    butter = _accepted(verdicts, "731209").observation
    assert (butter.price_cents, butter.member_price_cents) == (550, 450)

    eggs = _accepted(verdicts, "657014").observation
    assert eggs.available is False


def test_the_last_page_lists_each_variant_of_a_bundle_of_variants() -> None:
    page = _page("browse-dairy-eggs-fridge-page2.json", page=2, expected_total=40)
    assert [row["sku"] for row in page.rows] == [244521, 244522, 244523, 312877]
    assert page.rows[-1]["barcode"] is None, "no barcode on the tile: the details are fetched"


def test_per_kg_and_the_odd_products_quarantined_with_their_reason() -> None:
    verdicts = _verdicts("browse-fruit-veg-page1.json")
    bananas = _accepted(verdicts, "133211").observation
    assert (bananas.sold_by, bananas.price_cents) == ("kg", 390)
    reasons = {sku: v.reason for sku, v in verdicts.items() if isinstance(v, Rejected)}
    assert reasons == {
        "144329": "missing price",
        "120080": "unrecognised unit price '$0.27 / 10SH'",
        "105919": "unrecognised multi-buy 'Buy more, save more'",
    }


def test_an_empty_category() -> None:
    assert _page("browse-seasonal-page1.json", expected_total=0).rows == []


def test_a_silently_empty_page_is_refused() -> None:
    with pytest.raises(
        ShopAnswerError, match="page 2 lists no products where the category says 40"
    ) as caught:
        _page("browse-silently-empty.json", page=2)
    assert caught.value.kind == "empty_page"


def test_a_renamed_field_is_schema_drift() -> None:
    with pytest.raises(ShopAnswerError, match="the browse page has no field 'Bundles'") as caught:
        _page("browse-renamed-field.json")
    assert caught.value.kind == "schema_drift"
    product = fixture("woolworths", "browse-dairy-eggs-fridge-page1.json")
    product["Bundles"][0]["Products"][0]["CurrentPrice"] = product["Bundles"][0]["Products"][0].pop("Price")
    with pytest.raises(ShopAnswerError, match="a product has no field 'Price'"):
        woolworths.parse_page(product, page=1, expected_total=None, site=SITE)


def test_the_details_state_the_barcode() -> None:
    assert woolworths.parse_barcode(fixture("woolworths", "product-312877.json")) == "9310036104531"
    assert woolworths.parse_barcode(fixture("woolworths", "product-133211.json")) is None
