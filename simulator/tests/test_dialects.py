"""The world's chains served as Coles-like and Woolworths-like sites: same truth, odd cases, misbehaviour."""

import argparse
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from simulator.__main__ import dialect_choice
from simulator.app import create_app
from simulator.catalog import builtin_chains
from simulator.dialects import (
    COLES_PAGE_SIZE,
    EMPTY_CATEGORY,
    Dialect,
    chain_dialects,
    parse_choice,
    seo_token,
)
from simulator.shelf import unit_price
from simulator.world import World, WorldConfig

pytestmark = pytest.mark.unit

DIALECTS: dict[str, Dialect] = {"freshmart": "coles", "valueway": "woolworths"}
WOOLWORTHS_PAGE = 36
_MONEY = r"\$(\d+)\.(\d\d)"


@pytest.fixture(scope="module")
def world() -> World:
    """Return a small world: 4 stores of 2 zones a chain, the default catalog."""
    return World.build(WorldConfig(stores_per_chain=4, zones_per_chain=2))


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of a shop serving freshmart as Coles and valueway as Woolworths."""
    app = create_app(world, rate_limit_rps=0, error_rate=0, dialects=DIALECTS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as c:
        yield c


def _cents(value: float | None) -> int | None:
    """Return the cents of a dollar amount a body carries."""
    return None if value is None else round(value * 100)


async def _build_id(client: httpx.AsyncClient, chain: str) -> str:
    """Read the build id from a Coles-like home page, as a scraper does."""
    home = (await client.get(f"/shop/{chain}/")).text
    found = re.search(r'"buildId": "([^"]+)"', home)
    assert found is not None, home
    return found.group(1)


async def _coles_page(client: httpx.AsyncClient, build: str, token: str, page: int, store: str) -> Any:
    """Fetch a page of a Coles-like category for a store (chosen by its cookie)."""
    response = await client.get(
        f"/shop/freshmart/_next/data/{build}/en/browse/{token}.json",
        params={"slug": token, "page": page},
        headers={"Cookie": f"fulfillmentStoreId={store}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _woolworths_session(client: httpx.AsyncClient, store: str) -> dict[str, str]:
    """Choose a Woolworths-like pick-up store; return the session's cookies."""
    response = await client.post(
        "/shop/valueway/api/v3/ui/fulfilment", json={"fulfilmentMethod": "Pickup", "fulfilmentStoreId": store}
    )
    assert response.status_code == 200, response.text
    assert response.json()["IsSuccessful"] is True
    return dict(response.cookies)


async def _woolworths_page(client: httpx.AsyncClient, cookies: dict[str, str], node: str, page: int) -> Any:
    """Fetch a browse page of a Woolworths-like category for the session's store."""
    body = {
        "categoryId": node,
        "pageNumber": page,
        "pageSize": WOOLWORTHS_PAGE,
        "sortType": "TraderRelevance",
    }
    response = await client.post(
        "/shop/valueway/apis/ui/browse/category", json=body, headers=_cookie(cookies)
    )
    assert response.status_code == 200, response.text
    return response.json()


def _cookie(cookies: dict[str, str]) -> dict[str, str]:
    """Return the Cookie header that sends a session's cookies back."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


async def _truth(client: httpx.AsyncClient, chain: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the truth's prices of a chain today, by (store, sku)."""
    prices = (await client.get("/_truth/prices", params={"chain": chain})).json()["prices"]
    return {(p["store_id"], p["sku"]): p for p in prices}


async def _coles_shelves(
    client: httpx.AsyncClient, world: World
) -> tuple[dict[tuple[str, str], Any], Counter[str]]:
    """Read every Coles-like page of every store; return product tiles by (store, sku) and tile types."""
    build = await _build_id(client, "freshmart")
    menu = await client.post(
        "/shop/freshmart/api/graphql",
        json={"operationName": "GetShopProductsMenu", "variables": {"storeId": "COL:fm-001"}},
    )
    items = [item for item in menu.json()["data"]["menuItems"]["items"] if item["type"] == "CATALOG"]
    tiles: dict[tuple[str, str], Any] = {}
    kinds: Counter[str] = Counter()
    for store in world.stores("freshmart"):
        for item in items:
            pages = max(1, -(-item["productCount"] // COLES_PAGE_SIZE))
            for page in range(1, pages + 1):
                results = (await _coles_page(client, build, item["seoToken"], page, store.id))["pageProps"]
                assert results["searchResults"]["noOfResults"] == item["productCount"]
                for tile in results["searchResults"]["results"]:
                    kinds[tile["_type"]] += 1
                    if tile["_type"] == "PRODUCT":
                        tiles[store.id, str(tile["id"])] = tile
    return tiles, kinds


# --- the chains' directory and the command line ----------------------------------------------


async def test_the_directory_names_each_chains_dialect_and_site(client: httpx.AsyncClient) -> None:
    chains = (await client.get("/v1/chains")).json()["chains"]

    assert [(c["chain"], c["dialect"], c["url"]) for c in chains] == [
        ("freshmart", "coles", "/shop/freshmart"),
        ("valueway", "woolworths", "/shop/valueway"),
        ("greengrocer", "storefront", "/v1"),
    ]
    truth = (await client.get("/_truth/dialects")).json()
    assert truth["chains"] == {**DIALECTS, "greengrocer": "storefront"}
    assert truth["empty_category"] == EMPTY_CATEGORY[0]


def test_auto_serves_the_first_chain_as_coles_and_the_second_as_woolworths(world: World) -> None:
    chains = [chain.slug for chain in world.chains]
    assert chains[:2] == list(builtin_chains(2))
    assert chain_dialects(chains, ["auto"]) == DIALECTS
    assert chain_dialects(chains, ["auto", "freshmart=storefront"]) == {
        "freshmart": "storefront",
        "valueway": "woolworths",
    }
    assert chain_dialects(chains, []) == {}


def test_a_bad_dialect_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="CHAIN=DIALECT"):
        parse_choice("freshmart=aldi")
    with pytest.raises(argparse.ArgumentTypeError, match="CHAIN=DIALECT"):
        dialect_choice("=coles")
    with pytest.raises(ValueError, match="chains the world does not have"):
        create_app(world, rate_limit_rps=0, error_rate=0, dialects={"aldi": "coles"})


# --- the same truth in every dialect ---------------------------------------------------------


async def test_coles_pages_carry_the_truths_prices_offers_and_ways_of_selling(
    client: httpx.AsyncClient, world: World
) -> None:
    tiles, kinds = await _coles_shelves(client, world)
    truth = await _truth(client, "freshmart")

    assert set(tiles) == set(truth), "every store lists every product once"
    for key, tile in tiles.items():
        expected, pricing = truth[key], tile["pricing"]
        assert _cents(pricing["now"]) == expected["price_cents"], key
        assert (_cents(pricing["was"]) or None) == expected["was_price_cents"], key
        assert tile["availability"] == expected["available"], key
        assert pricing["unit"]["isWeighted"] == (expected["sold_by"] == "kg"), key
        promotion = pricing["multiBuyPromotion"]
        multibuy = expected["multibuy"]
        assert (promotion and (promotion["min"], _cents(promotion["reward"]))) == (
            multibuy and (multibuy["quantity"], multibuy["total_cents"])
        ), key
        assert _cents(pricing.get("memberPrice")) == expected["member_price_cents"], key
    # The odd cases of a real site are all there.
    assert kinds["SINGLE_TILE"] > 0
    assert kinds["PRODUCT_BUNDLE"] > 0
    assert any(t["pricing"]["was"] for t in tiles.values())
    assert any(t["pricing"]["multiBuyPromotion"] for t in tiles.values())
    assert any(t["pricing"].get("memberPrice") for t in tiles.values())
    assert any(t["pricing"]["unit"]["isWeighted"] for t in tiles.values())
    assert any(not t["availability"] for t in tiles.values())


async def test_woolworths_pages_carry_the_truths_prices_for_the_sessions_store(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = (await client.get("/shop/valueway/apis/ui/PiesCategoriesWithSpecials")).json()["Categories"]
    nodes = [node for node in tree if node["NodeId"] != "specialsgroup"]
    truth = await _truth(client, "valueway")
    seen: dict[tuple[str, str], Any] = {}
    bundles = 0
    for store in world.stores("valueway"):
        cookies = await _woolworths_session(client, store.id)
        for node in nodes:
            for page in range(1, max(1, -(-node["ProductCount"] // WOOLWORTHS_PAGE)) + 1):
                body = await _woolworths_page(client, cookies, node["NodeId"], page)
                assert body["TotalRecordCount"] == node["ProductCount"]
                for product in (p for bundle in body["Bundles"] for p in bundle["Products"]):
                    if product["IsBundle"]:
                        bundles += 1
                        continue
                    seen[store.id, str(product["Stockcode"])] = product

    assert set(seen) == set(truth)
    assert bundles > 0
    for key, product in seen.items():
        expected = truth[key]
        assert _cents(product["Price"]) == expected["price_cents"], key
        on_special = expected["was_price_cents"] is not None
        assert product["IsOnSpecial"] == on_special, key
        # WasPrice repeats the price when the product is not on special, as the real API does.
        assert _cents(product["WasPrice"]) == (expected["was_price_cents"] or expected["price_cents"]), key
        assert product["IsInStock"] == expected["available"], key
        assert (product["Unit"] == "KG") == (expected["sold_by"] == "kg"), key
        assert _cents(product["MemberPrice"]) == expected["member_price_cents"], key
        tag = product["CentreTag"]
        multibuy = expected["multibuy"]
        if multibuy is None:
            assert tag["TagType"] == "None", key
        else:
            total = f"${multibuy['total_cents'] // 100}.{multibuy['total_cents'] % 100:02d}"
            assert tag["TagType"] == "MultiBuy", key
            assert f"Any {multibuy['quantity']} for {total}" in tag["TagContent"], key


async def test_stores_of_different_zones_see_different_prices_through_their_sessions(
    client: httpx.AsyncClient, world: World
) -> None:
    zones = world.zones("valueway")
    one, other = (members[0] for members in zones.values())
    node = (await client.get("/shop/valueway/apis/ui/PiesCategoriesWithSpecials")).json()["Categories"][0]
    pages = [
        await _woolworths_page(client, await _woolworths_session(client, store), node["NodeId"], 1)
        for store in (one, other)
    ]
    prices = [[p["Price"] for b in page["Bundles"] for p in b["Products"]] for page in pages]
    assert prices[0] != prices[1]


def test_stated_unit_prices_follow_the_size() -> None:
    assert unit_price("250g", 466) is not None
    assert unit_price("250g", 466) == unit_price("0.25kg", 466)
    assert (unit_price("250g", 450).cents, unit_price("250g", 450).quantity) == (180, 100)  # type: ignore[union-attr]
    assert unit_price("2L", 320).measure == "1l"  # type: ignore[union-attr]
    assert unit_price("6 x 375mL", 900).measure == "1l"  # type: ignore[union-attr]
    assert unit_price("6 pack", 480).cents == 80  # type: ignore[union-attr]
    assert unit_price("1kg", 400, by_weight=True).measure == "1kg"  # type: ignore[union-attr]
    assert unit_price("30m", 450) is None


async def test_unit_price_labels_state_the_price_per_measure(client: httpx.AsyncClient, world: World) -> None:
    tiles, _ = await _coles_shelves(client, world)
    labelled = [tile for tile in tiles.values() if tile["pricing"]["comparable"]]
    assert len(labelled) > 0.9 * len(tiles)
    for tile in labelled:
        pricing = tile["pricing"]
        found = re.fullmatch(_MONEY + r" per (\d+)(g|kg|mL|L|ea)", pricing["comparable"])
        assert found is not None, pricing["comparable"]
        assert int(found.group(1)) * 100 + int(found.group(2)) == _cents(pricing["unit"]["price"])


# --- the odd cases ---------------------------------------------------------------------------


async def test_the_empty_category_is_listed_and_its_page_is_empty(client: httpx.AsyncClient) -> None:
    menu = await client.post("/shop/freshmart/api/graphql", json={"operationName": "GetShopProductsMenu"})
    empty = [
        item for item in menu.json()["data"]["menuItems"]["items"] if item["seoToken"] == EMPTY_CATEGORY[0]
    ]
    assert [item["productCount"] for item in empty] == [0]

    page = await _coles_page(client, await _build_id(client, "freshmart"), EMPTY_CATEGORY[0], 1, "fm-001")
    assert page["pageProps"]["searchResults"]["noOfResults"] == 0
    assert page["pageProps"]["searchResults"]["results"] == []


async def test_product_details_give_the_barcode(client: httpx.AsyncClient, world: World) -> None:
    coles_product, woolworths_product = world.products("freshmart")[0], world.products("valueway")[0]
    build = await _build_id(client, "freshmart")

    coles = await client.get(f"/shop/freshmart/_next/data/{build}/en/product/{coles_product.sku}.json")
    woolworths = await client.get(f"/shop/valueway/apis/ui/product/detail/{woolworths_product.sku}")

    assert coles.json()["pageProps"]["product"]["gtin"] == coles_product.barcode
    assert woolworths.json()["Product"]["Barcode"] == woolworths_product.barcode


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/shop/valueway/apis/ui/StoreLocator/Stores", None, 200),
        ("GET", "/shop/freshmart/apis/ui/StoreLocator/Stores", None, 404),  # Coles speaks no Woolworths
        ("GET", "/shop/greengrocer/", None, 404),  # the storefront's own dialect has no site
        (
            "POST",
            "/shop/valueway/apis/ui/browse/category",
            {"categoryId": "x", "pageNumber": 1, "pageSize": 36},
            400,
        ),
        ("POST", "/shop/valueway/api/v3/ui/fulfilment", {"fulfilmentMethod": "Pickup"}, 400),
        ("POST", "/shop/valueway/api/v3/ui/fulfilment", {"fulfilmentStoreId": "nope"}, 404),
        ("POST", "/shop/freshmart/api/graphql", {"operationName": "Other"}, 400),
    ],
)
async def test_requests_a_site_cannot_answer_are_refused_clearly(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.json()["detail"]


async def test_woolworths_refuses_pages_bigger_than_36(client: httpx.AsyncClient) -> None:
    cookies = await _woolworths_session(client, "vw-001")
    node = (await client.get("/shop/valueway/apis/ui/PiesCategoriesWithSpecials")).json()["Categories"][0]
    body = {"categoryId": node["NodeId"], "pageNumber": 1, "pageSize": 48}
    response = await client.post(
        "/shop/valueway/apis/ui/browse/category", json=body, headers=_cookie(cookies)
    )
    assert response.status_code == 400
    assert "at most 36" in response.json()["detail"]


# --- misbehaviour ----------------------------------------------------------------------------


async def _misbehave(client: httpx.AsyncClient, **change: Any) -> dict[str, Any]:
    response = await client.post("/_control", json=change)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_new_build_makes_old_data_urls_404_until_the_home_page_is_read_again(
    client: httpx.AsyncClient,
) -> None:
    old = await _build_id(client, "freshmart")
    assert (await _misbehave(client, build_id="20990101.01_v9.9.9"))["build_id"] == "20990101.01_v9.9.9"

    stale = await client.get(f"/shop/freshmart/_next/data/{old}/en/browse/bakery.json", params={"page": 1})
    assert stale.status_code == 404
    assert "build id" in stale.json()["detail"]
    new = await _build_id(client, "freshmart")
    assert new == "20990101.01_v9.9.9"
    assert (await _coles_page(client, new, "bakery", 1, "fm-001"))["pageProps"]["searchResults"]["results"]


async def test_a_challenge_page_replaces_every_chain_answer_but_not_the_directory(
    client: httpx.AsyncClient,
) -> None:
    await _misbehave(client, misbehaviour="challenge")

    for path in (
        "/shop/freshmart/",
        "/shop/valueway/apis/ui/StoreLocator/Stores",
        "/v1/chains/greengrocer/stores",
    ):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "Pardon Our Interruption" in response.text
    assert (await client.get("/v1/chains")).json()["chains"]

    await _misbehave(client, misbehaviour="none")
    assert (await client.get("/shop/valueway/apis/ui/StoreLocator/Stores")).json()["Stores"]


@pytest.mark.parametrize("status", [403, 429])
async def test_a_storm_refuses_the_chosen_chains_only(client: httpx.AsyncClient, status: int) -> None:
    control = await _misbehave(client, misbehaviour=f"storm-{status}", misbehaving_chains=["valueway"])
    assert control["misbehaving_chains"] == ["valueway"]

    refused = await client.get("/shop/valueway/apis/ui/StoreLocator/Stores")
    assert refused.status_code == status
    assert ("retry-after" in refused.headers) == (status == 429)
    assert (await client.get("/shop/freshmart/")).status_code == 200


async def test_silently_empty_pages_keep_their_totals(client: httpx.AsyncClient) -> None:
    await _misbehave(client, misbehaviour="empty-pages")
    build = await _build_id(client, "freshmart")

    results = (await _coles_page(client, build, "bakery", 1, "fm-001"))["pageProps"]["searchResults"]
    assert results["noOfResults"] > 0
    assert results["results"] == []
    storefront = await client.get("/v1/chains/greengrocer/stores/gg-001/categories/bakery")
    assert storefront.json()["products"] == []


async def test_a_renamed_field_moves_the_price_in_every_dialect(client: httpx.AsyncClient) -> None:
    await _misbehave(client, misbehaviour="renamed-field")

    coles = await _coles_page(client, await _build_id(client, "freshmart"), "bakery", 1, "fm-001")
    tiles = [t for t in coles["pageProps"]["searchResults"]["results"] if t["_type"] == "PRODUCT"]
    assert tiles
    assert all("priceInfo" in t and "pricing" not in t for t in tiles)
    cookies = await _woolworths_session(client, "vw-001")
    node = (await client.get("/shop/valueway/apis/ui/PiesCategoriesWithSpecials")).json()["Categories"][0]
    woolworths = await _woolworths_page(client, cookies, node["NodeId"], 1)
    assert "Items" in woolworths
    assert "Bundles" not in woolworths
    storefront = (await client.get("/v1/chains/greengrocer/stores/gg-001/categories/bakery")).json()
    assert all("price_now" in p and "price" not in p for p in storefront["products"])


async def test_a_misbehaviour_with_a_budget_ends_by_itself(client: httpx.AsyncClient) -> None:
    await _misbehave(client, misbehaviour="storm-403", misbehaving_answers=2)

    statuses = [(await client.get("/shop/freshmart/")).status_code for _ in range(3)]

    assert statuses == [403, 403, 200]
    assert (await client.get("/_control")).json()["misbehaviour"] == "none"


async def test_a_stale_build_answers_404_although_the_home_page_names_it(client: httpx.AsyncClient) -> None:
    await _misbehave(client, misbehaviour="stale-build")
    build = await _build_id(client, "freshmart")

    stale = await client.get(f"/shop/freshmart/_next/data/{build}/en/browse/bakery.json", params={"page": 1})

    assert stale.status_code == 404


async def test_an_unknown_misbehaving_chain_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_control", json={"misbehaviour": "challenge", "misbehaving_chains": ["aldi"]}
    )
    assert response.status_code == 404


# --- the world's offers ----------------------------------------------------------------------


def test_offers_come_only_in_quiet_weeks_and_save_something(world: World) -> None:
    kinds: Counter[str] = Counter()
    for day in range(0, 28, 3):
        specials = {(s.chain, s.zone, s.sku) for s in world.specials(day)}
        for offer in world.offers(day):
            kinds[offer.kind] += 1
            assert (offer.chain, offer.zone, offer.sku) not in specials
            store = world.zones(offer.chain, day)[offer.zone][0]
            price = world.price(offer.chain, store, offer.sku, day)
            assert price.was_price_cents is None
            assert offer.total_cents / (offer.quantity or 1) < price.price_cents + 60  # exceptions aside
            if offer.kind == "multibuy":
                assert offer.quantity in (2, 3)
                assert offer.total_cents % 10 == 0
    assert kinds["multibuy"] > 0
    assert kinds["member"] > 0


def test_only_unbranded_loose_produce_and_meat_is_sold_by_weight(world: World) -> None:
    for chain in world.chains:
        for product in world.products(chain.slug):
            weighed = world.sold_by(chain.slug, product.sku) == "kg"
            loose = (
                product.category in ("produce", "meat") and product.brand is None and product.size == "1kg"
            )
            assert weighed == loose
    assert any(world.sold_by(c.slug, p.sku) == "kg" for c in world.chains for p in world.products(c.slug))


def test_a_store_shows_an_offer_only_when_it_is_cheaper_than_its_own_shelf(world: World) -> None:
    shown = 0
    for chain in world.chains:
        for store in world.stores(chain.slug):
            for product in world.products(chain.slug):
                offer = world.offer(chain.slug, store.id, product.sku, 10)
                if offer is None:
                    continue
                shown += 1
                price = world.price(chain.slug, store.id, product.sku, 10).price_cents
                assert offer.total_cents / (offer.quantity or 1) < price
    assert shown > 0


def test_a_category_token_is_the_name_in_url_form() -> None:
    assert seo_token("Dairy, Eggs & Fridge") == "dairy-eggs-fridge"
    assert seo_token("Fruit & Vegetables") == "fruit-vegetables"
