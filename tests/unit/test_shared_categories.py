"""One category tree across chains: the shared tree, the packaged map, lookups, and the stamp on products."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from contracts.categories import SHARED_CATEGORIES, well_formed
from contracts.events import ProductObserved
from scraper.category_map import CATEGORY_MAP, load_category_map
from scraper.domain.categories import CategoryMap, CategoryMapError, category_key, read_category_map
from scraper.domain.importers import RawRow
from scraper.service_layer.ingestion import Ingestor
from scraper.telemetry import ScraperCounters
from simulator.catalog import DEFAULT_CATEGORIES, builtin_catalog, category_name
from tests.fakes.scraper import InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

# Browse categories as Coles and Woolworths name them (top level > second level), two each per aisle.
COLES = (
    "Meat & Seafood > Beef & Veal",
    "Meat & Seafood > BBQ, Sausages & Burgers",
    "Fruit & Vegetables > Fruit",
    "Fruit & Vegetables > Salad & Herbs",
    "Dairy, Eggs & Fridge > Cheese",
    "Dairy, Eggs & Fridge > Long Life-Milk",
    "Bakery > Packaged Flat Bread, Wraps and Pizza Bases",
    "Deli > Deli Gourmet Cheese",
    "Pantry > Pasta, Rice, Legumes & Grains",
    "Pantry > Jams, Honey & Spreads",
    "Drinks > Soft Drinks",
    "Frozen > Frozen Chips & Wedges",
    "Household > Toilet Paper, Tissues & Paper Towels",
    "Health & Beauty > Dental Care",
    "Baby > Nappies & Nappy Pants",
    "Pet > Cat & Kitten",
    "Liquor > Red Wine",
)
WOOLWORTHS = (
    "Fruit & Veg > Vegetables",
    "Poultry, Meat & Seafood > Poultry",
    "Deli & Chilled Meals > Deli Meats",
    "Dairy, Eggs & Fridge > Yoghurt",
    "Pantry > Oil & Vinegar",
    "Freezer > Frozen Pizzas",
    "Drinks > Cordials, Juices & Iced Teas",
    "Snacks & Confectionery > Biscuits & Crackers",
    "Beauty & Personal Care > Men's Care",
    "Cleaning & Maintenance > Laundry",
    "Baby > Baby Food",
    "Pet > Dog & Puppy",
    "Liquor > Beer",
)


@pytest.fixture(scope="module")
def packaged() -> CategoryMap:
    """Read the map the scraper ships with."""
    return load_category_map(None)


def test_the_shared_tree_is_well_formed() -> None:
    assert len(SHARED_CATEGORIES) > 100
    for path, node in SHARED_CATEGORIES.items():
        assert well_formed(path), path
        assert node.path == path
        assert node.label
        assert node.parent is None or node.parent in SHARED_CATEGORIES, path
    assert SHARED_CATEGORIES["dairy/cheese"].parent == "dairy"


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Dairy, Eggs & Fridge > Cheese", "dairy-eggs-fridge/cheese"),
        ("dairy-eggs-fridge/cheese", "dairy-eggs-fridge/cheese"),
        ("Beauty & Personal Care > Men's Care", "beauty-personal-care/men-s-care"),
        ("  Dairy  ", "dairy"),
    ],
)
def test_a_category_is_the_same_however_the_shop_writes_it(written: str, key: str) -> None:
    assert category_key(written) == key


def test_every_simulated_chain_and_category_is_mapped(packaged: CategoryMap) -> None:
    chains = [chain.slug for chain in builtin_catalog(1, 3, 24, DEFAULT_CATEGORIES).chains]
    for chain in (*chains, "coles", "woolworths", "iga", "aldi"):
        for slug in DEFAULT_CATEGORIES:
            # The storefront's slug, and the token a chain dialect's tree writes for its name.
            expected = packaged.shared(chain, slug)
            assert expected is not None, (chain, slug)
            assert packaged.shared(chain, category_key(category_name(slug))) == expected, (chain, slug)
    # The simulator's slugs mean the same aisle at every chain.
    assert {packaged.shared(chain, "dairy") for chain in chains} == {"dairy"}


@pytest.mark.parametrize(("chain", "names"), [("coles", COLES), ("woolworths", WOOLWORTHS)])
def test_real_browse_categories_map_onto_second_level_nodes(
    packaged: CategoryMap, chain: str, names: tuple[str, ...]
) -> None:
    for name in names:
        shared = packaged.shared(chain, name)
        assert shared is not None, name
        assert "/" in shared, f"{name} maps only to the top of the tree: {shared}"


def test_cheese_is_one_shared_category_at_both_chains(packaged: CategoryMap) -> None:
    assert packaged.shared("coles", "Dairy, Eggs & Fridge > Cheese") == packaged.shared(
        "woolworths", "dairy-eggs-fridge/cheese"
    )


def test_a_new_sub_category_falls_back_to_its_mapped_aisle(packaged: CategoryMap) -> None:
    assert packaged.shared("coles", "Dairy, Eggs & Fridge > Brand New Shelf") == "dairy"


def test_unknown_categories_stay_unmapped_and_are_listed(packaged: CategoryMap) -> None:
    assert packaged.shared("coles", "Down Down > Beverages") is None
    assert packaged.shared("nochain", "dairy") is None
    assert packaged.shared("coles", None) is None
    seen = [("coles", "Down Down > Beverages"), ("coles", "dairy"), ("coles", "Down Down > Beverages")]
    assert packaged.unmapped(seen) == [("coles", "Down Down > Beverages")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("chain,category\nx,y\n", "line 1: the header must be"),
        (
            "chain,chain_category,shared_path\nx,dairy,dairy/nonsense\n",
            "line 2: 'dairy/nonsense' is not a path",
        ),
        ("chain,chain_category,shared_path\nx,dairy\n", "line 2: expected 3 cells"),
        ("chain,chain_category,shared_path\n,dairy,dairy\n", "must not be empty"),
        (
            "chain,chain_category,shared_path\nx,Dairy,dairy\nx,dairy,bakery\n",
            "line 3: x 'dairy' is already mapped to 'dairy', not 'bakery'",
        ),
    ],
)
def test_a_faulty_map_is_refused_saying_where(text: str, problem: str) -> None:
    with pytest.raises(CategoryMapError, match=problem):
        read_category_map(text)


def test_an_operator_map_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("chain,chain_category,shared_path\nfreshmart,dairy,dairy/milk\n\n")
    corrected = load_category_map(path)
    assert corrected.shared("freshmart", "dairy") == "dairy/milk"
    assert corrected.shared("coles", "dairy") is None
    with pytest.raises(ValueError, match="SCRAPER_CATEGORY_MAP: cannot read"):
        load_category_map(path.with_name("missing.csv"))


def test_the_packaged_map_is_shipped_beside_the_code() -> None:
    assert CATEGORY_MAP.name == "category_map.csv"
    assert CATEGORY_MAP.is_file()


async def test_ingested_products_carry_their_shared_category_and_a_correction_republishes() -> None:
    repo = InMemoryScraperRepository()
    uow = FakeUnitOfWork(repo)
    rows: list[RawRow] = [
        {"sku": "a", "price_cents": 450, "name": "Tasty Cheese", "category": "Dairy, Eggs & Fridge > Cheese"},
        {"sku": "b", "price_cents": 200, "name": "Mystery", "category": "Down Down > Beverages"},
    ]
    counters = ScraperCounters.register(CollectorRegistry())
    first = Ingestor(uow=uow, counters=counters, categories=read_category_map(CATEGORY_MAP.read_text()))
    await first.ingest(
        rows, default_chain="coles", default_store="s1", source="import", observed_at=None, now=NOW
    )
    stamped = {e.payload.sku: e.payload.shared_category for e in uow.published_of(ProductObserved)}
    assert stamped == {"a": "dairy/cheese", "b": None}

    # The operator maps the promotion aisle: the product is described again with its new category.
    corrected = read_category_map("chain,chain_category,shared_path\ncoles,down-down,drinks\n")
    second = Ingestor(uow=uow, counters=counters, categories=corrected)
    later = [{**row, "observed_at": "2026-11-20T11:00:00Z"} for row in rows[1:]]
    await second.ingest(
        later, default_chain="coles", default_store="s1", source="import", observed_at=None, now=NOW
    )
    republished = uow.published_of(ProductObserved)[2:]
    assert [(e.payload.sku, e.payload.change, e.payload.shared_category) for e in republished] == [
        ("b", "changed", "drinks")
    ]
