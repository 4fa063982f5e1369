"""The grouping algorithm: matching, banded candidates, anchors, no chaining, merging, and its scores."""

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from grouping.domain.fingerprints import fingerprint
from grouping.domain.grouping import Group, GroupingResult, find_groups, match_counts, matches
from simulator.evaluation import adjusted_rand_index, merges_distinct
from simulator.world import World, WorldConfig

pytestmark = pytest.mark.unit

Prices = npt.NDArray[np.int32]

DAY = 3
CHAINS = ("freshmart", "valueway", "greengrocer")
AU_GROCERY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "au-grocery-2023"
# Two stores of a zone differ on both stores' exceptions (~1% at 0.5% each) and a store can draw
# twice its share: on the built-in 240 products, 98% of ~190 common products tolerates 3 differences,
# and up to a quarter of same-zone pairs have more. The noisy world needs a real chain's range of
# products (aldi's 166 are too few, so it is left out).
NOISY_CHAINS = ("coles", "woolworths", "iga")
NOISY_PRODUCTS = 2000


def _catalog(products: int = 100, seed: int = 1) -> Prices:
    """Return one store's prices: `products` distinct-ish prices from $1 to $10."""
    return np.random.default_rng(seed).integers(100, 1000, products).astype(np.int32)


def _changed(prices: Prices, columns: Sequence[int], cents: int = 7) -> Prices:
    """Return a copy of a price vector with the given products repriced by `cents`."""
    changed = prices.copy()
    changed[list(columns)] += cents
    return changed


@functools.cache
def _clean_world() -> World:
    """Build (once) the built-in 3 chains x 30 stores x 4 zones x 240 products, without exceptions."""
    return World.build(WorldConfig(exception_share=0.0, out_of_stock_share=0.0))


@functools.cache
def _noisy_world() -> World:
    """Build (once) real chains of 30 stores x 4 zones x 2,000 products, 0.5% exceptions, 1% out of stock."""
    if not AU_GROCERY.is_dir():
        pytest.skip(f"needs the real catalog at {AU_GROCERY}")
    config = WorldConfig(
        exception_share=0.005,
        out_of_stock_share=0.01,
        products_per_chain=NOISY_PRODUCTS,
        catalog_path=AU_GROCERY,
    )
    return World.build(config)


@functools.cache
def _chain_prices(world: World, chain: str) -> tuple[Prices, list[str]]:
    """Return (once, read-only) a chain's prices on DAY, 0 where out of stock, and its store ids."""
    stores = [store.id for store in world.stores(chain)]
    skus = [product.sku for product in world.products(chain)]
    prices = np.zeros((len(stores), len(skus)), dtype=np.int32)
    for row, store in enumerate(stores):
        for column, sku in enumerate(skus):
            shelf = world.price(chain, store, sku, DAY)
            prices[row, column] = shelf.price_cents if shelf.available else 0
    prices.flags.writeable = False
    return prices, stores


def _scraped_partially(prices: Prices, seed: int) -> Prices:
    """Blank 10% of each store's prices and make a few prices of the chain deviate by 10-60 cents."""
    rng = np.random.default_rng(seed)
    scraped = prices.copy()
    stores, products = scraped.shape
    for row in range(stores):
        scraped[row, rng.choice(products, products // 10, replace=False)] = 0
    for deviating in rng.choice(stores, 5):
        scraped[deviating, rng.choice(np.flatnonzero(scraped[deviating]))] += rng.integers(10, 61)
    return scraped


def _score(world: World, chain: str, stores: list[str], result: GroupingResult) -> float:
    """Check every store is in exactly one group; return the ARI of the groups against the zones."""
    placed = [store for group in result.groups for store in group.stores]
    assert sorted(placed) == sorted(stores)
    anchor_of = result.anchor_of()
    zones = [world.zone_of(chain, store) for store in stores]
    return adjusted_rand_index(zones, [anchor_of[store] for store in stores])


def _freshness(stores: int, seed: int = 0) -> list[float]:
    """Return random POSIX-like times of the stores' newest prices."""
    return list(1.7e9 + np.random.default_rng(seed).random(stores) * 86_400)


# --- matching ------------------------------------------------------------------------------------


def test_match_counts_only_products_both_stores_priced() -> None:
    a = np.array([100, 200, 0, 300, 400], dtype=np.int32)
    b = np.array([100, 250, 500, 0, 400], dtype=np.int32)
    assert match_counts(a, b) == (3, 2)


def test_matches_needs_the_share_of_equal_prices() -> None:
    a = _catalog()
    assert matches(a, _changed(a, range(2)))  # 98 of 100 equal: exactly the default 98%
    assert not matches(a, _changed(a, range(3)))
    assert not matches(a, _changed(a, range(1)), min_share=1.0)


def test_stores_with_fewer_common_products_than_min_common_never_match() -> None:
    # Both stores price 100 products, but only the overlap is common.
    a, b = np.zeros((2, 151), dtype=np.int32)
    a[:100] = _catalog(100)
    for overlap, expected in ((49, False), (50, True)):
        b[:] = 0
        b[100 - overlap : 100] = a[100 - overlap : 100]  # common, priced alike
        b[100 : 200 - overlap] = 123  # priced by b only
        assert match_counts(a, b) == (overlap, overlap)
        assert matches(a, b) is expected
        result = find_groups(np.stack([a, b]), ["a", "b"], [0.0, 0.0])
        assert len(result.groups) == (1 if expected else 2)


def test_matches_rejects_vectors_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="one length"):
        matches(_catalog(100), _catalog(99))


# --- fingerprints --------------------------------------------------------------------------------


def test_a_band_with_a_missing_price_gives_no_key() -> None:
    prices = np.stack([_catalog(8)] * 4)
    prices[2, 0] += 7  # store 2 charges differently for sku 0
    prices[3, 0] = 0  # store 3 has no price for sku 0
    prints = fingerprint(prices, bands=2, band_size=4, seed=0)
    assert sorted(prints.skus.ravel().tolist()) == list(range(8))  # enough skus: disjoint bands
    band = int(np.nonzero(prints.skus == 0)[0][0])
    assert prints.keys[0, band] == prints.keys[1, band] != prints.keys[2, band]
    assert prints.keys[3, band] == -1
    assert len(set(prints.keys[:, 1 - band].tolist())) == 1  # all alike on the other band
    assert prints.candidates(0).tolist() == [1, 2, 3]
    assert prints.candidates(3).tolist() == [0, 1, 2]  # through the other band only


# --- the simulated world -------------------------------------------------------------------------


@pytest.mark.parametrize("chain", CHAINS)
def test_a_clean_world_groups_exactly_into_its_zones(chain: str) -> None:
    world = _clean_world()
    prices, stores = _chain_prices(world, chain)
    result = find_groups(prices, stores, _freshness(len(stores)))
    assert _score(world, chain, stores, result) == 1.0
    assert not merges_distinct(
        {store: world.zone_of(chain, store) for store in stores}, [g.stores for g in result.groups]
    )


@pytest.mark.parametrize("chain", NOISY_CHAINS)
def test_exceptions_and_partial_scrapes_keep_the_zones(chain: str) -> None:
    world = _noisy_world()
    prices, stores = _chain_prices(world, chain)
    result = find_groups(_scraped_partially(prices, seed=11), stores, _freshness(len(stores)))
    assert _score(world, chain, stores, result) >= 0.95
    assert not merges_distinct(
        {store: world.zone_of(chain, store) for store in stores}, [g.stores for g in result.groups]
    )


def test_far_fewer_pairs_are_compared_than_possible() -> None:
    world = _clean_world()
    prices, stores = _chain_prices(world, "freshmart")
    result = find_groups(_scraped_partially(prices, seed=11), stores, _freshness(len(stores)))
    print(
        f"{len(stores)} stores, {len(world.zones('freshmart'))} zones: compared {result.pairs_compared} "
        f"of {result.pairs_possible} pairs ({result.compared_share:.1%})"
    )
    assert result.compared_share < 0.20


def test_a_store_whose_prices_drift_leaves_its_zone() -> None:
    world = _clean_world()
    prices, stores = _chain_prices(world, "freshmart")
    prices = prices.copy()
    drifting = "fm-010"
    row = stores.index(drifting)
    prices[row] = _changed(prices[row], range(0, prices.shape[1], 10), cents=5)  # 10% of its prices
    result = find_groups(prices, stores, _freshness(len(stores)))
    groups = {group.anchor: group.stores for group in result.groups}
    assert groups[drifting] == (drifting,)
    zone = world.zones("freshmart")[world.zone_of("freshmart", drifting)]
    rest = {store for store in zone if store != drifting}
    assert any(rest == set(members) for members in groups.values())


# --- anchors, chaining, merging -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blank_a", "freshness", "keep", "anchor"),
    [
        (10, [2.0, 1.0], {"a"}, "b"),  # coverage first: b prices more, even though a is fresher and kept
        (0, [1.0, 2.0], {"a"}, "b"),  # then freshness: b is fresher, even though a is kept
        (0, [1.0, 1.0], {"b"}, "b"),  # then the anchor the caller keeps
        (0, [1.0, 1.0], set(), "a"),  # then row order
    ],
)
def test_anchor_choice(blank_a: int, freshness: list[float], keep: set[str], anchor: str) -> None:
    a = _catalog(120)
    prices = np.stack([a, a])
    prices[0, :blank_a] = 0
    result = find_groups(prices, ["a", "b"], freshness, keep_anchors=keep)
    member = "a" if anchor == "b" else "b"
    assert result.groups == (Group(anchor, (member,)),)


def test_members_never_chain_through_another_member() -> None:
    a = _catalog()
    b = _changed(a, [0, 1])
    c = _changed(b, [2, 3])
    assert matches(a, b)
    assert matches(b, c)
    assert not matches(a, c)
    result = find_groups(np.stack([a, b, c]), ["a", "b", "c"], [3.0, 2.0, 1.0])
    assert result.groups == (Group("a", ("b",)), Group("c"))
    assert result.pairs_compared == 2  # c was a candidate of a and was refused, not joined through b


def test_matching_anchors_merge_and_the_larger_group_absorbs_the_smaller() -> None:
    base = _catalog()
    prices = np.stack([base, _changed(base, [0]), _changed(base, range(10)), base])
    stores = ["a1", "a2", "a3", "new"]
    keep = {"a1", "a2", "a3"}
    result = find_groups(prices, stores, [1.0] * 4, keep_anchors=keep, group_sizes={"a1": 3, "a2": 10})
    assert result.groups == (Group("a2", ("a1", "new")), Group("a3"))
    # Without group sizes the best-ranked anchor leads: equal coverage and freshness, kept, first row.
    result = find_groups(prices, stores, [1.0] * 4, keep_anchors=keep)
    assert result.groups == (Group("a1", ("a2", "new")), Group("a3"))


def test_a_new_store_with_better_coverage_leads_the_group_of_a_kept_anchor() -> None:
    base = _catalog()
    prices = np.stack([base, base])
    prices[0, :5] = 0  # the kept anchor lost coverage; the new store prices everything
    result = find_groups(prices, ["old", "new"], [1.0, 1.0], keep_anchors={"old"})
    assert result.groups == (Group("new", ("old",)),)


def test_a_store_with_too_few_prices_is_a_group_of_its_own() -> None:
    base = _catalog()
    prices = np.stack([base, base])
    prices[1, 49:] = 0
    result = find_groups(prices, ["a", "b"], [0.0, 0.0])
    assert result.groups == (Group("a"), Group("b"))
    assert result.pairs_compared == 0


def test_grouping_is_deterministic_for_a_seed() -> None:
    world = _clean_world()
    prices, stores = _chain_prices(world, "valueway")
    scraped = _scraped_partially(prices, seed=3)
    runs = [find_groups(scraped, stores, _freshness(len(stores)), seed=5) for _ in range(2)]
    assert runs[0] == runs[1]


def test_no_stores_no_groups() -> None:
    result = find_groups(np.zeros((0, 10), dtype=np.int32), [], [])
    assert result == GroupingResult((), 0, 0)
    assert result.compared_share == 0.0


@pytest.mark.parametrize(
    ("prices", "stores", "message"),
    [
        (np.ones((2, 5), dtype=np.int64), ["a", "b"], "int32"),
        (np.ones((2, 5), dtype=np.int32), ["a"], "one price row"),
        (np.ones((2, 5), dtype=np.int32), ["a", "a"], "distinct"),
        (-np.ones((2, 5), dtype=np.int32), ["a", "b"], ">= 0"),
    ],
)
def test_find_groups_rejects_inconsistent_input(
    prices: npt.NDArray[Any], stores: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        find_groups(prices, stores, [0.0] * len(stores))
