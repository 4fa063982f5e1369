"""The Coles parsers against bodies of the web app's real shape (tests/fixtures/chains/coles)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from scraper.domain.chains import ChainCategory, ParsedPage, ShopAnswerError, coles
from scraper.domain.ingest import Accepted, Rejected, validate_row
from scraper.domain.planning import StoreInfo
from tests.fakes.chain_sites import fixture, fixture_text

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SITE = "https://www.coles.com.au"


def _page(name: str, page: int = 1, expected_total: int | None = None) -> ParsedPage:
    return coles.parse_page(fixture("coles", name), page=page, expected_total=expected_total, site=SITE)


def _verdicts(name: str, page: int = 1) -> dict[str, Accepted | Rejected]:
    """Validate a page's rows as the scraper does, keyed by product id."""
    rows = _page(name, page).rows
    return {
        str(row.get("sku")): validate_row(
            {**row, "category": "c"}, default_chain="coles", default_store="7724", now=NOW
        )
        for row in rows
    }


def _accepted(verdicts: dict[str, Accepted | Rejected], sku: str) -> Accepted:
    verdict = verdicts[sku]
    assert isinstance(verdict, Accepted), verdict
    return verdict


def test_the_build_id_comes_from_the_home_page() -> None:
    assert coles.parse_build_id(fixture_text("coles", "home.html")) == "20240618.01_v4.12.0"


def test_a_challenge_page_has_no_build_id() -> None:
    with pytest.raises(ShopAnswerError) as caught:
        coles.parse_build_id(fixture_text("coles", "challenge.html"))
    assert caught.value.kind == "challenge"


def test_stores() -> None:
    stores = coles.parse_stores(fixture("coles", "stores.json"))
    assert stores[0] == StoreInfo("7724", "Coles Sydney Central", "NSW", "2000")
    assert [s.store_id for s in stores] == ["7724", "0584", "0311"]
    assert stores[2].postcode is None


def test_categories_leave_campaigns_out_and_count_pages_of_48() -> None:
    tree = coles.parse_categories(fixture("coles", "categories.json"))
    assert [c.slug for c in tree] == ["dairy-eggs-fridge", "fruit-vegetables", "seasonal-range"]
    assert tree[0] == ChainCategory("dairy-eggs-fridge", "1234", "Dairy, Eggs & Fridge", 50)
    assert [c.pages(coles.PAGE_SIZE) for c in tree] == [2, 1, 0]


def test_a_page_skips_ads_and_bundles_and_reads_every_label() -> None:
    page = _page("browse-dairy-eggs-fridge-page1.json")
    assert page.total == 50
    assert [row["sku"] for row in page.rows] == [8150288, 2349581, 5561722, 7893303, 3904488]
    verdicts = _verdicts("browse-dairy-eggs-fridge-page1.json")

    milk = _accepted(verdicts, "8150288")
    assert milk.observation.price_cents == 465
    assert milk.observation.was_price_cents is None, "was 0 means no special"
    assert milk.observation.unit_price is not None
    assert milk.observation.unit_price.text == "$1.55 per 1L"
    assert milk.product is not None
    assert (milk.product.name, milk.product.brand, milk.product.size) == (
        "Full Cream Milk",
        "Coles",
        "3L",
    )
    assert milk.product.url == f"{SITE}/product/coles-full-cream-milk-3l-8150288"

    cheese = _accepted(verdicts, "2349581").observation
    assert (cheese.price_cents, cheese.was_price_cents) == (800, 1000)

    yoghurt = _accepted(verdicts, "5561722").observation
    assert yoghurt.multibuy is not None
    assert (yoghurt.multibuy.quantity, yoghurt.multibuy.total_cents) == (
        2,
        1200,
    )
    assert yoghurt.price_cents == 700
    assert yoghurt.was_price_cents is None, "a multi-buy is not a shelf discount"

    butter = _accepted(verdicts, "7893303").observation
    assert (butter.price_cents, butter.member_price_cents) == (550, 450)

    eggs = _accepted(verdicts, "3904488").observation
    assert eggs.available is False
    assert eggs.price_cents == 720


def test_the_odd_tiles_are_quarantined_with_their_reason() -> None:
    verdicts = _verdicts("browse-fruit-vegetables-page1.json")
    carrots = _accepted(verdicts, "2510017").observation
    assert carrots.sold_by == "kg"
    assert carrots.price_cents == 250
    apples = _accepted(verdicts, "2510402").observation
    assert apples.sold_by == "each", "a 1kg bag is sold each, though its unit price is per kg"
    reasons = {sku: v.reason for sku, v in verdicts.items() if isinstance(v, Rejected)}
    assert reasons == {
        "2510120": "price only 'from' a range (From $3.50), not a shelf price",
        "2510245": "missing price (the tile has no pricing)",
        "recipe-77": "unknown tile type 'RECIPE_TILE'",
        "2510388": "unrecognised unit price '$2.50 per 1 bunch'",
    }


def test_the_last_page_and_an_empty_category() -> None:
    last = _page("browse-dairy-eggs-fridge-page2.json", page=2, expected_total=50)
    assert [row["sku"] for row in last.rows] == [4420183, 6610071]
    empty = _page("browse-seasonal-range-page1.json", expected_total=0)
    assert (empty.rows, empty.total) == ([], 0)


def test_a_page_past_the_end_is_empty_without_alarm() -> None:
    body = fixture("coles", "browse-seasonal-range-page1.json")
    body["pageProps"]["searchResults"] |= {"noOfResults": 48, "start": 48}
    assert coles.parse_page(body, page=2, expected_total=None, site=SITE).rows == []


@pytest.mark.parametrize(
    ("name", "expected_total", "message"),
    [
        ("browse-silently-empty.json", None, "page 1 lists no products where the category says 50"),
        ("browse-seasonal-range-page1.json", 50, "page 1 says 0 products where the category tree said 50"),
    ],
)
def test_a_silently_empty_page_is_refused(name: str, expected_total: int | None, message: str) -> None:
    with pytest.raises(ShopAnswerError, match=message) as caught:
        _page(name, expected_total=expected_total)
    assert caught.value.kind == "empty_page"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture("coles", "browse-renamed-field.json"), "a product tile has no field 'pricing'"),
        ({"pageProps": {"results": {}}}, "the page's pageProps has no field 'searchResults'"),
        ({"props": {}}, "the page has no field 'pageProps'"),
    ],
)
def test_a_renamed_field_is_schema_drift_for_the_whole_page(body: Any, message: str) -> None:
    with pytest.raises(ShopAnswerError, match=message) as caught:
        coles.parse_page(body, page=1, expected_total=None, site=SITE)
    assert caught.value.kind == "schema_drift"


def test_the_product_page_states_the_barcode() -> None:
    assert coles.parse_barcode(fixture("coles", "product-8150288.json")) == "9300633603201"
    assert coles.parse_barcode(fixture("coles", "product-2510017.json")) is None
