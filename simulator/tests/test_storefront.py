"""The simulated storefront: its pure world model, the real-names catalog and the HTTP API."""

import math
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from simulator.app import TokenBuckets, create_app
from simulator.catalog import (
    DEFAULT_CATEGORIES,
    AuRow,
    au_grocery_catalog,
    ean13,
    read_au_grocery,
)
from simulator.world import NotFoundError, ShelfPrice, World, WorldConfig

pytestmark = pytest.mark.unit

AU_GROCERY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "au-grocery-2023"


@pytest.fixture(scope="module")
def world() -> World:
    """Return the default world (seed 7)."""
    return World.build(WorldConfig())


def _client(app: FastAPI) -> httpx.AsyncClient:
    """Return a client that calls the app in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test")


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of a fresh shop with no throttling and no injected errors."""
    async with _client(create_app(world, rate_limit_rps=0, error_rate=0)) as client:
        yield client


# --- the world: layout and catalog ------------------------------------------------------------


def test_default_world_has_three_chains_of_30_stores_and_240_products(world: World) -> None:
    assert [chain.slug for chain in world.chains] == ["freshmart", "valueway", "greengrocer"]
    assert [chain.name for chain in world.chains] == ["FreshMart", "ValueWay", "GreenGrocer"]
    for chain in world.chains:
        stores = world.stores(chain.slug)
        assert len(stores) == 30
        assert all(len(store.postcode) == 4 and store.postcode.isdigit() for store in stores)
        assert len({store.name for store in stores}) == 30
        products = world.products(chain.slug)
        assert len(products) == 240
        assert len({product.sku for product in products}) == 240
        assert all(product.sku.isdigit() for product in products)
        assert sum(category.products for category in world.categories(chain.slug)) == 240
    assert world.stores("freshmart")[0].id == "fm-001"


def test_every_store_is_in_exactly_one_zone_and_zones_differ_in_size(world: World) -> None:
    for chain in world.chains:
        zones = world.zones(chain.slug)
        assert len(zones) == 4
        members = [store_id for store_ids in zones.values() for store_id in store_ids]
        assert sorted(members) == sorted(store.id for store in world.stores(chain.slug))
        sizes = [len(store_ids) for store_ids in zones.values()]
        assert len(set(sizes)) == len(sizes)
        for zone, store_ids in zones.items():
            assert all(world.zone_of(chain.slug, store_id) == zone for store_id in store_ids)


def test_zones_never_change_unless_zone_moves_are_configured(world: World) -> None:
    assert world.zone_moves() == ()
    for chain in world.chains:
        assert world.zone_moves(chain.slug) == ()
        assert world.zones(chain.slug, 40) == world.zones(chain.slug)
        store_id = world.stores(chain.slug)[5].id
        assert {world.zone_of(chain.slug, store_id, day) for day in range(0, 60, 7)} == {
            world.zone_of(chain.slug, store_id)
        }


@pytest.fixture(scope="module")
def moving() -> World:
    """Return the default world with two stores per chain re-zoned on day 5."""
    return World.build(WorldConfig(zone_moves_per_chain=2, zone_move_day=5))


def test_zone_moves_re_zone_a_few_stores_per_chain_on_the_move_day(world: World, moving: World) -> None:
    moves = moving.zone_moves()
    assert [move.chain for move in moves] == [c.slug for c in moving.chains for _ in range(2)]
    for chain in moving.chains:
        assert moving.zone_moves(chain.slug) == tuple(m for m in moves if m.chain == chain.slug)
        # The layout before the move day is the unmoved world's.
        assert moving.zones(chain.slug, 4) == world.zones(chain.slug)
        after = moving.zones(chain.slug, 5)
        assert moving.zones(chain.slug, 60) == after
        assert all(len(store_ids) >= 2 for store_ids in after.values()), "every zone keeps two stores"
    for move in moves:
        assert move.day == 5
        assert move.from_zone != move.to_zone
        assert move.from_zone == world.zone_of(move.chain, move.store_id)
        assert moving.zone_of(move.chain, move.store_id, 4) == move.from_zone
        assert moving.zone_of(move.chain, move.store_id, 5) == move.to_zone
        assert move.store_id in moving.zones(move.chain, 5)[move.to_zone]
        assert move.store_id not in moving.zones(move.chain, 5)[move.from_zone]


def test_zone_moves_are_fixed_by_the_seed() -> None:
    config = WorldConfig(zone_moves_per_chain=3, zone_move_day=2)
    again = World.build(config).zone_moves()
    assert again == World.build(config).zone_moves()
    assert again != World.build(WorldConfig(seed=8, zone_moves_per_chain=3, zone_move_day=2)).zone_moves()
    # Asking for moves later gives the same world as building it with them.
    assert World.build(WorldConfig()).with_zone_moves(3, 2).zone_moves() == again
    assert World.build(config).with_zone_moves(0, 2).zone_moves() == ()


def test_a_moved_store_charges_its_new_zones_prices_from_the_move_day(world: World, moving: World) -> None:
    for move in moving.zone_moves():
        exceptions = moving.exceptions(move.chain)
        peers = {
            zone: next(
                s
                for s in world.zones(move.chain)[zone]
                if s != move.store_id and moving.zone_of(move.chain, s, 60) == zone
            )
            for zone in (move.from_zone, move.to_zone)
        }
        for product in moving.products(move.chain)[:60]:
            if any((s, product.sku) in exceptions for s in (move.store_id, *peers.values())):
                continue
            for day, zone in ((4, move.from_zone), (5, move.to_zone), (20, move.to_zone)):
                price = moving.price(move.chain, move.store_id, product.sku, day)
                peer = moving.price(move.chain, peers[zone], product.sku, day)
                assert (price.price_cents, price.was_price_cents) == (peer.price_cents, peer.was_price_cents)
    # Every store that does not move charges what it charges in the world without moves.
    moved = {(m.chain, m.store_id) for m in moving.zone_moves()}
    for chain in ("freshmart", "valueway"):
        stays = [s for s in moving.stores(chain) if (chain, s.id) not in moved][:6]
        for day in (0, 5, 13):
            for store in stays:
                for product in moving.products(chain)[:30]:
                    assert moving.price(chain, store.id, product.sku, day) == world.price(
                        chain, store.id, product.sku, day
                    )


def test_barcodes_are_valid_ean13() -> None:
    assert ean13("400638133393") == "4006381333931"
    world = World.build(WorldConfig(seed=11))
    for chain in world.chains:
        for product in world.products(chain.slug):
            assert product.barcode is not None
            assert len(product.barcode) == 13
            assert ean13(product.barcode[:12]) == product.barcode


def test_l1_pairs_share_a_barcode_under_different_names(world: World) -> None:
    pairs = [e for e in world.equivalences() if e.level == "L1"]
    assert len(pairs) > 50
    for pair in pairs:
        a, b = world.product(pair.chain_a, pair.sku_a), world.product(pair.chain_b, pair.sku_b)
        assert pair.chain_a != pair.chain_b
        assert a.barcode == b.barcode
        if a.brand or b.brand:
            assert a.name != b.name
        assert a.size == b.size


def _is_store_brand(world: World, chain: str, sku: str) -> bool:
    """Tell whether a product carries its own chain's name: brand field or, in shouty names, first word."""
    product = world.product(chain, sku)
    name = next(c.name for c in world.chains if c.slug == chain)
    return product.brand == name or product.name.startswith(name.upper())


def test_l2_and_l3_pairs_are_the_same_size_without_a_shared_barcode(world: World) -> None:
    levels = Counter(e.level for e in world.equivalences())
    assert levels["L2"] > 20
    assert levels["L3"] > 20
    for pair in world.equivalences():
        a, b = world.product(pair.chain_a, pair.sku_a), world.product(pair.chain_b, pair.sku_b)
        assert (a.size, a.category) == (b.size, b.category)
        if pair.level == "L2":
            assert a.barcode != b.barcode
        if pair.level == "L3":
            assert _is_store_brand(world, pair.chain_a, pair.sku_a) or _is_store_brand(
                world, pair.chain_b, pair.sku_b
            )


def test_a_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="zones_per_chain"):
        WorldConfig(stores_per_chain=3, zones_per_chain=4)
    with pytest.raises(ValueError, match="share"):
        WorldConfig(special_share=1.5)
    with pytest.raises(ValueError, match="too small"):
        World.build(WorldConfig(products_per_chain=50_000))
    with pytest.raises(ValueError, match="zone_moves_per_chain"):
        WorldConfig(zone_moves_per_chain=-1)
    with pytest.raises(ValueError, match="zone_move_day"):
        WorldConfig(zone_moves_per_chain=1, zone_move_day=0)
    with pytest.raises(ValueError, match="zones_per_chain >= 2"):
        WorldConfig(zones_per_chain=1, zone_moves_per_chain=1)
    # 6 stores in 2 zones of 3: each zone keeps two, so only two stores can move.
    with pytest.raises(ValueError, match="can move 2 stores, not 3"):
        World.build(WorldConfig(stores_per_chain=6, zones_per_chain=2, zone_moves_per_chain=3))


# --- the world: prices -------------------------------------------------------------------------


def _prices(world: World, chain: str, days: range) -> list[ShelfPrice]:
    """Return what the first 5 stores charge for the first 40 products on each day."""
    return [
        world.price(chain, store.id, product.sku, day)
        for day in days
        for store in world.stores(chain)[:5]
        for product in world.products(chain)[:40]
    ]


def test_the_same_seed_gives_the_same_world_and_another_seed_a_different_one(world: World) -> None:
    again = World.build(WorldConfig())
    other = World.build(WorldConfig(seed=8))
    assert again.products("valueway") == world.products("valueway")
    assert again.equivalences() == world.equivalences()
    assert _prices(again, "valueway", range(0, 60, 3)) == _prices(world, "valueway", range(0, 60, 3))
    assert other.products("valueway") != world.products("valueway")
    assert _prices(other, "valueway", range(0, 60, 3)) != _prices(world, "valueway", range(0, 60, 3))


def test_stores_of_a_zone_charge_the_same_except_exception_pairs(world: World) -> None:
    exceptions = world.exceptions("freshmart")
    assert exceptions
    assert all(10 <= abs(cents) <= 60 for cents in exceptions.values())
    deviating = 0
    for day in (0, 13, 40):
        for store_ids in world.zones("freshmart").values():
            for product in world.products("freshmart"):
                prices = {s: world.price("freshmart", s, product.sku, day).price_cents for s in store_ids}
                usual = Counter(prices.values()).most_common(1)[0][0] if len(store_ids) > 2 else None
                for store_id, price in prices.items():
                    deviation = exceptions.get((store_id, product.sku))
                    if deviation is None:
                        assert usual is None or price == usual
                    else:
                        deviating += 1
                        assert usual is None or price == max(1, usual + deviation)
    assert deviating > 0


def test_zones_charge_different_prices(world: World) -> None:
    zones = world.zones("greengrocer")
    first_stores = [store_ids[0] for store_ids in zones.values()]
    for product in world.products("greengrocer")[:20]:
        prices = {world.price("greengrocer", s, product.sku, 0).price_cents for s in first_stores}
        if product.base_cents > 300:
            assert len(prices) > 1


def test_true_specials_cut_at_least_15_percent_off_the_regular_price(world: World) -> None:
    specials = [
        special for day in range(0, 70, 3) for special in world.specials(day) if special.kind == "true"
    ]
    assert specials
    for special in specials:
        assert special.was_price_cents == special.regular_cents
        assert special.price_cents < special.was_price_cents
        assert special.price_cents <= 0.85 * special.regular_cents
        assert special.price_cents >= 0.6 * special.regular_cents - 1


def test_illusory_specials_show_the_price_raised_in_the_days_before_as_was_price(world: World) -> None:
    checked = 0
    for week in range(1, 10):
        for special in world.specials(week * 7):
            if special.kind != "illusory":
                continue
            store_id = next(
                s
                for s in world.zones(special.chain)[special.zone]
                if (s, special.sku) not in world.exceptions(special.chain)
            )
            before = [
                world.price(special.chain, store_id, special.sku, day)
                for day in range(week * 7 - 6, week * 7)
            ]
            old_regular, raised = before[0], before[1:]
            assert old_regular.was_price_cents is None
            assert all(shown.price_cents == special.was_price_cents for shown in raised)
            assert all(shown.was_price_cents is None for shown in raised)
            assert 1.2 * old_regular.price_cents <= special.was_price_cents <= 1.3 * old_regular.price_cents
            assert 0.97 * old_regular.price_cents - 1 <= special.price_cents <= old_regular.price_cents
            on_special = world.price(special.chain, store_id, special.sku, week * 7)
            assert (on_special.price_cents, on_special.was_price_cents) == (
                special.price_cents,
                special.was_price_cents,
            )
            checked += 1
    assert checked > 20


def test_special_exception_and_stock_shares_are_roughly_as_configured(world: World) -> None:
    zone_days = sum(len(world.zones(chain.slug)) * len(world.products(chain.slug)) for chain in world.chains)
    specials = [special for week in range(8) for special in world.specials(week * 7 + 3)]
    assert 0.07 < len(specials) / (zone_days * 8) < 0.13
    illusory = sum(1 for special in specials if special.kind == "illusory")
    assert 0.15 < illusory / len(specials) < 0.35
    pairs = 30 * 240
    share = world.config.exception_share
    assert share / 2 < len(world.exceptions("valueway")) / pairs < share * 2
    out_of_stock = sum(not price[2] for price in _prices(world, "valueway", range(0, 30)))
    assert 0.005 < out_of_stock / (30 * 5 * 40) < 0.02


def test_regular_prices_drift_for_some_products_every_28_days(world: World) -> None:
    store = world.stores("freshmart")[0].id
    moved = 0
    for product in world.products("freshmart"):
        # Week 0 and week 12 regular prices, read on a day without special and without pre-inflation.
        start = world.price("freshmart", store, product.sku, 0)
        later = world.price("freshmart", store, product.sku, 12 * 7)
        if start.was_price_cents is None and later.was_price_cents is None:
            moved += start.price_cents != later.price_cents
    assert 10 < moved < 200


def test_pages_cover_every_product_exactly_once(world: World) -> None:
    for chain in world.chains:
        seen = Counter(
            listing.sku
            for category in world.categories(chain.slug)
            for page in range(1, category.pages + 1)
            for listing in world.page(chain.slug, world.stores(chain.slug)[3].id, category.slug, page, 5)
        )
        assert set(seen) == {product.sku for product in world.products(chain.slug)}
        assert set(seen.values()) == {1}
    with pytest.raises(NotFoundError):
        world.page("freshmart", "fm-001", "dairy", 0, 0)
    with pytest.raises(NotFoundError):
        world.page("freshmart", "vw-001", "dairy", 1, 0)


# --- real product names: au-grocery-2023 ---------------------------------------------------------


@pytest.fixture(scope="module")
def au_rows() -> dict[str, list[AuRow]]:
    """Read the real au-grocery-2023 rows once."""
    return read_au_grocery(AU_GROCERY)


def test_the_au_loader_reads_every_chain_file(au_rows: dict[str, list[AuRow]]) -> None:
    assert set(au_rows) == {"coles", "woolworths", "iga", "aldi"}
    assert len(au_rows["coles"]) >= 8000


def test_the_au_catalog_keeps_the_first_row_per_sku_and_parses_urls(au_rows: dict[str, list[AuRow]]) -> None:
    catalog = au_grocery_catalog(au_rows, 7, 100_000, DEFAULT_CATEGORIES)
    chains = {chain.slug: chain for chain in catalog.chains}
    assert [chain.slug for chain in catalog.chains] == ["coles", "woolworths", "iga", "aldi"]
    assert catalog.equivalences == ()
    coles = {product.sku: product for product in chains["coles"].products}
    assert len(coles) > 6000
    taco = coles["3804387"]
    assert (taco.name, taco.brand, taco.size, taco.base_cents) == (
        "Taco Shells Family Pack",
        "Old El Paso",
        "18 pack",
        600,
    )
    woolworths = [product.sku for product in chains["woolworths"].products]
    assert len(woolworths) == len(set(woolworths))
    assert "779130" in woolworths
    aldi = {product.sku for product in chains["aldi"].products}
    assert "uht-milk-soy-1l" in aldi
    assert all(len(sku) <= 64 and not sku.isdigit() for sku in aldi)
    for chain in catalog.chains:
        assert all(product.category in DEFAULT_CATEGORIES for product in chain.products)
        assert all(product.base_cents > 0 and product.size for product in chain.products)


def test_a_capped_au_world_picks_the_same_products_for_the_same_seed() -> None:
    config = WorldConfig(
        catalog_path=AU_GROCERY, products_per_chain=100, stores_per_chain=6, zones_per_chain=2
    )
    world = World.build(config)
    again = World.build(config)
    other = World.build(WorldConfig(catalog_path=AU_GROCERY, products_per_chain=100, seed=8))
    assert [chain.slug for chain in world.chains] == ["coles", "woolworths", "iga", "aldi"]
    assert all(len(world.products(chain.slug)) == 100 for chain in world.chains)
    assert world.products("coles") == again.products("coles")
    assert world.products("coles") != other.products("coles")
    assert world.stores("coles")[0].id == "co-001"
    assert world.equivalences() == ()
    product = world.products("coles")[0]
    zone_prices = {world.price("coles", s, product.sku, 0) for s in world.zones("coles")["co-z1"]}
    assert len(zone_prices) <= 2


def test_a_capped_au_world_sells_half_its_products_at_another_chain_too_and_invents_no_barcode() -> None:
    world = World.build(WorldConfig(catalog_path=AU_GROCERY, products_per_chain=100, stores_per_chain=6))

    def named(chain: str) -> dict[str, str]:
        """Return each product's words with its brand's, as a set, to its sku."""
        return {
            " ".join(sorted(f"{p.brand or ''} {p.name}".lower().replace("'", "").split())): p.sku
            for p in world.products(chain)
        }

    coles, woolworths, iga = named("coles"), named("woolworths"), named("iga")
    # A random 100 of Coles' 6,265 and Woolworths' 4,838 would hold one such product or none.
    assert len(coles.keys() & (woolworths.keys() | iga.keys())) >= 30
    assert len(woolworths.keys() & coles.keys()) >= 20
    assert all(p.barcode is None for chain in world.chains for p in world.products(chain.slug))


# --- the HTTP API ----------------------------------------------------------------------------------


async def test_chains_stores_categories_and_products(client: httpx.AsyncClient, world: World) -> None:
    chains = (await client.get("/v1/chains")).json()
    assert chains == {
        "chains": [
            {"chain": c.slug, "name": c.name, "dialect": "storefront", "url": "/v1"} for c in world.chains
        ]
    }
    stores = (await client.get("/v1/chains/valueway/stores")).json()["stores"]
    assert len(stores) == 30
    assert set(stores[0]) == {"id", "name", "state", "postcode"}
    categories = (await client.get("/v1/chains/valueway/categories")).json()
    assert categories["page_size"] == 24
    dairy = next(c for c in categories["categories"] if c["slug"] == "dairy")
    assert dairy["pages"] == math.ceil(dairy["products"] / 24)
    sku = world.products("valueway")[0].sku
    product = (await client.get(f"/v1/chains/valueway/products/{sku}")).json()
    assert set(product) == {"sku", "name", "brand", "size", "category", "barcode"}
    assert product["barcode"] == world.product("valueway", sku).barcode


async def test_a_page_shows_dollars_of_the_requested_day(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(
        "/v1/chains/freshmart/stores/fm-004/categories/pantry", params={"page": 2, "day": 9}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["chain"], body["store_id"], body["category"], body["page"], body["day"]) == (
        "freshmart",
        "fm-004",
        "pantry",
        2,
        9,
    )
    assert body["pages"] == world.category("freshmart", "pantry").pages
    assert len(body["products"]) == 24 or body["page"] == body["pages"]
    for item in body["products"]:
        assert set(item) == {"sku", "name", "brand", "size", "price", "was_price", "available"}
        price = world.price("freshmart", "fm-004", item["sku"], 9)
        assert round(item["price"] * 100) == price.price_cents
        assert item["was_price"] is None or round(item["was_price"] * 100) == price.was_price_cents


async def test_pages_over_http_cover_every_product_once(client: httpx.AsyncClient, world: World) -> None:
    categories = (await client.get("/v1/chains/greengrocer/categories")).json()["categories"]
    seen: Counter[str] = Counter()
    for category in categories:
        for page in range(1, category["pages"] + 1):
            url = f"/v1/chains/greengrocer/stores/gg-010/categories/{category['slug']}"
            seen.update(
                item["sku"] for item in (await client.get(url, params={"page": page})).json()["products"]
            )
        past = await client.get(url, params={"page": category["pages"] + 1})
        assert past.status_code == 404
    assert set(seen) == {product.sku for product in world.products("greengrocer")}
    assert set(seen.values()) == {1}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chains/nomart/stores",
        "/v1/chains/freshmart/stores/fm-999/categories/dairy",
        "/v1/chains/freshmart/stores/fm-001/categories/toys",
        "/v1/chains/freshmart/products/000000",
        "/_truth/prices?chain=nomart",
    ],
)
async def test_unknown_things_are_404_with_a_detail(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["detail"]


async def test_the_clock_starts_at_0_and_moves(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/clock")).json() == {"day": 0}
    assert (await client.post("/v1/clock", json={"advance": 3})).json() == {"day": 3}
    assert (await client.post("/v1/clock", json={"day": 20})).json() == {"day": 20}
    assert (await client.get("/v1/clock")).json() == {"day": 20}
    page = (await client.get("/v1/chains/freshmart/stores/fm-001/categories/dairy")).json()
    assert page["day"] == 20
    assert (await client.post("/v1/clock", json={"day": 1, "advance": 1})).status_code == 422
    assert (await client.post("/v1/clock", json={})).status_code == 422


async def test_truth_endpoints_match_the_world(client: httpx.AsyncClient, world: World) -> None:
    zones = (await client.get("/_truth/zones")).json()["chains"]
    assert zones["valueway"]["vw-007"] == world.zone_of("valueway", "vw-007")
    prices = (await client.get("/_truth/prices", params={"chain": "valueway", "day": 4})).json()
    assert prices["day"] == 4
    assert len(prices["prices"]) == 30 * 240
    row = prices["prices"][100]
    assert (row["price_cents"], row["was_price_cents"], row["available"]) == tuple(
        world.price("valueway", row["store_id"], row["sku"], 4)
    )
    specials = (await client.get("/_truth/specials", params={"day": 4})).json()["specials"]
    assert len(specials) == len(world.specials(4))
    assert set(specials[0]) == {
        "chain",
        "zone",
        "sku",
        "kind",
        "price_cents",
        "was_price_cents",
        "regular_cents",
    }
    equivalences = (await client.get("/_truth/equivalences")).json()["equivalences"]
    assert len(equivalences) == len(world.equivalences())
    assert set(equivalences[0]) == {"level", "chain_a", "sku_a", "chain_b", "sku_b"}


async def test_truth_zones_follow_the_clock_and_zone_moves_are_set_at_run_time(world: World) -> None:
    async with _client(create_app(world, rate_limit_rps=0, error_rate=0)) as client:
        assert (await client.get("/_truth/zone-moves")).json() == {"moves": []}
        assert (await client.get("/_control/zone-moves")).json() == {"per_chain": 0, "day": 3}
        before = (await client.get("/_truth/zones")).json()
        assert before["day"] == 0
        changed = await client.post("/_control/zone-moves", json={"per_chain": 2, "day": 4})
        assert changed.json() == {"per_chain": 2, "day": 4}
        moves = (await client.get("/_truth/zone-moves")).json()["moves"]
        assert len(moves) == 2 * len(world.chains)
        move = moves[0]
        assert set(move) == {"chain", "store_id", "from_zone", "to_zone", "day"}
        assert move["day"] == 4
        on_day_3 = (await client.get("/_truth/zones", params={"day": 3})).json()
        assert on_day_3 == {"day": 3, "chains": before["chains"]}
        await client.post("/v1/clock", json={"day": 4})
        after = (await client.get("/_truth/zones")).json()
        assert after["day"] == 4
        assert after["chains"][move["chain"]][move["store_id"]] == move["to_zone"]
        changed_stores = {
            (chain, store)
            for chain, zones in after["chains"].items()
            for store, zone in zones.items()
            if before["chains"][chain][store] != zone
        }
        assert changed_stores == {(m["chain"], m["store_id"]) for m in moves}
        # The shop charges the new zone's prices: the page a store shows is the moved world's.
        url = f"/v1/chains/{move['chain']}/stores/{move['store_id']}/categories/dairy"
        page = (await client.get(url)).json()["products"]
        moved_world = world.with_zone_moves(2, 4)
        first = moved_world.price(move["chain"], move["store_id"], page[0]["sku"], 4)
        assert round(page[0]["price"] * 100) == first.price_cents
        too_many = await client.post("/_control/zone-moves", json={"per_chain": 29})
        assert too_many.status_code == 422
        assert (await client.post("/_control/zone-moves", json={"per_chain": 0})).json() == {
            "per_chain": 0,
            "day": 4,
        }
        assert (await client.get("/_truth/zone-moves")).json() == {"moves": []}


async def test_truth_counts_pages_served_and_refusals(world: World) -> None:
    async with _client(create_app(world, rate_limit_rps=0, error_rate=0)) as client:
        url = "/v1/chains/freshmart/stores/fm-002/categories/dairy"
        for params in ({"page": 1}, {"page": 1}, {"page": 2, "day": 5}):
            assert (await client.get(url, params=params)).status_code == 200
        assert (await client.get(url, params={"page": 99})).status_code == 404
        await client.post("/_control", json={"rate_limit_rps": 0.001})
        await client.get("/v1/chains")
        throttled = await client.get("/v1/chains")
        counts = (await client.get("/_truth/requests")).json()
    assert throttled.status_code == 429
    assert counts == {
        "pages": {"freshmart/fm-002/dairy/1/0": 2, "freshmart/fm-002/dairy/2/5": 1},
        "throttled": 1,
        "errors": 0,
        "requests": 6,
    }


async def test_over_the_rate_a_client_gets_429_with_retry_after(world: World) -> None:
    async with _client(create_app(world, rate_limit_rps=0.5, error_rate=0)) as client:
        first = await client.get("/v1/chains")
        second = await client.get("/v1/chains")
        truth = await client.get("/_truth/requests")
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
    assert truth.status_code == 200


def test_token_buckets_allow_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(4, clock=lambda: now[0])
    assert [buckets.allow("a") for _ in range(5)] == [True, True, True, True, False]
    assert buckets.allow("b")
    now[0] = 0.5
    assert [buckets.allow("a") for _ in range(3)] == [True, True, False]
    assert TokenBuckets(0).allow("a")


async def test_about_the_configured_share_of_requests_fail_with_503(world: World) -> None:
    statuses = []
    for _ in range(2):
        async with _client(create_app(world, rate_limit_rps=0, error_rate=0.2)) as client:
            run = [(await client.get("/v1/chains")).status_code for _ in range(500)]
            run += [(await client.get("/_truth/zones")).status_code for _ in range(20)]
            errors = (await client.get("/_truth/requests")).json()["errors"]
        statuses.append(run)
        assert set(run[500:]) == {200}
        assert errors == run.count(503)
        assert 0.15 < run.count(503) / 500 < 0.25
    assert statuses[0] == statuses[1]


async def test_control_changes_failure_settings_at_run_time(client: httpx.AsyncClient) -> None:
    calm: dict[str, object] = {
        "misbehaviour": "none",
        "misbehaving_chains": [],
        "misbehaving_answers": None,
        "build_id": "7.01_v1.0.0",
    }
    assert (await client.get("/_control")).json() == {"rate_limit_rps": 0, "error_rate": 0, **calm}
    changed = await client.post("/_control", json={"error_rate": 1.0, "rate_limit_rps": 50})
    assert changed.json() == {"rate_limit_rps": 50, "error_rate": 1.0, **calm}
    assert (await client.get("/v1/chains")).status_code == 503
    assert (await client.get("/v1/clock")).status_code == 200
    await client.post("/_control", json={"error_rate": 0})
    assert (await client.get("/v1/chains")).status_code == 200
    assert (await client.post("/_control", json={"error_rate": 2})).status_code == 422
