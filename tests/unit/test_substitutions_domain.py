"""The pure substitutions domain: sizes, product parsing, the four match levels, the catalogue, scores."""

from collections import Counter

import numpy as np
import pytest

from substitutions.domain.catalogue import Catalogue, Description, ProductKey, SubstituteRow, known_brands
from substitutions.domain.evaluation import GoldPair, LevelScore, Ranked, evaluate
from substitutions.domain.matching import Index, Level, Policy
from substitutions.domain.products import (
    ParsedProduct,
    Size,
    distinguishing_words,
    house_brands,
    ngram_vector,
    normalise,
    parse_product,
    parse_size,
    size_bucket,
    size_ratio,
    sizes_compatible,
    strip_sizes,
    variant_mask,
    word_stem,
)
from substitutions.embeddings import Vectors
from tests.fakes.substitutions import HashingEncoder, list_of

pytestmark = pytest.mark.unit

ENCODER = HashingEncoder()
GTIN_MILK = "9300000000011"
GTIN_OTHER = "9300000000028"
Link = tuple[Level, str, str]
Ranking = tuple[str, str, Level, float]


def _product(
    chain: str,
    sku: str,
    name: str,
    *,
    brand: str | None = None,
    size: str | None = None,
    category: str | None = None,
    barcode: str | None = None,
) -> ParsedProduct:
    return parse_product(
        chain=chain, sku=sku, name=name, brand=brand, size=size, category=category, barcode=barcode
    )


def _vector(product: ParsedProduct) -> Vectors:
    """Embed a product's kind (its name without brand or size), as the matcher does with its model."""
    vector: Vectors = ENCODER.encode([product.kind])[0]
    return vector


def _index(*products: ParsedProduct) -> Index:
    index = Index(dimensions=ENCODER.dimensions)
    for product in products:
        index.put(product, _vector(product))
    return index


def _links(
    index: Index, chain: str, sku: str, *, policy: Policy | None = None, within: str | None = None
) -> list[Link]:
    """Return one product's substitutes as (level, chain, sku), in the order found."""
    at = index.position(chain, sku)
    assert at is not None
    matches = index.find([at], policy or Policy(), within=within)[at]
    return [
        (match.level, index.products[match.other].chain, index.products[match.other].sku) for match in matches
    ]


def _at(links: list[Link], *levels: Level) -> set[tuple[str, str]]:
    return {(chain, sku) for level, chain, sku in links if level in levels}


def _milk(
    chain: str, sku: str = "milk", *, barcode: str | None = None, name: str = "Pauls Full Cream Milk 2L"
) -> ParsedProduct:
    return _product(chain, sku, name, brand="Pauls", category="Dairy", barcode=barcode)


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2L", Size(2000.0, "volume")),
        ("6 x 375mL", Size(2250.0, "volume", 6)),
        ("375ml x 6", Size(2250.0, "volume", 6)),
        ("4x400g", Size(1600.0, "mass", 4)),
        ("1 x 2L", Size(2000.0, "volume")),
        ("500g", Size(500.0, "mass")),
        ("1.5kg", Size(1500.0, "mass")),
        ("1,5kg", Size(1500.0, "mass")),
        ("Each", Size(1.0, "count")),
        ("1 each", Size(1.0, "count")),
        ("12 pack", Size(12.0, "count")),
        ("pack of 12", Size(12.0, "count")),
        ("2 x 12 pack", Size(24.0, "count")),
        ("approx. 100g", Size(100.0, "mass")),
        ("0.485", Size(0.485, "bare")),
        ("30m", Size(30000.0, "length")),
    ],
)
def test_shop_spellings_of_a_size_become_an_amount_in_a_base_unit(text: str, expected: Size) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [None, "", "large", "per kg", "0", "0g"])
def test_text_without_a_positive_size_gives_none(text: str | None) -> None:
    assert parse_size(text) is None


def test_sizes_are_stripped_from_names_and_read_from_them_when_no_size_is_given() -> None:
    cola = _product("freshmart", "1", "Coca-Cola 1.25L")

    assert strip_sizes("Beer 6 x 375mL Cans").split() == ["beer", "cans"]
    assert (cola.kind, cola.size) == ("coca cola", Size(1250.0, "volume"))


def test_the_size_field_wins_over_the_name_and_an_unreadable_one_falls_back_to_it() -> None:
    assert _product("freshmart", "1", "Cola 2L", size="1.25L").size == Size(1250.0, "volume")
    assert _product("freshmart", "1", "Cola 2L", size="large").size == Size(2000.0, "volume")


def test_a_bare_number_is_kilograms_or_litres_against_weights_and_volumes() -> None:
    assert sizes_compatible(Size(500.0, "mass"), Size(0.5, "bare"), tolerance=0.0)
    assert sizes_compatible(Size(0.485, "bare"), Size(485.0, "volume"), tolerance=0.0)
    assert size_ratio(Size(12.0, "count"), Size(12.0, "bare")) == 1.0
    assert size_ratio(Size(30000.0, "length"), Size(30.0, "bare")) is None


def test_sizes_of_different_dimensions_or_unknown_are_never_compatible() -> None:
    assert size_ratio(Size(500.0, "mass"), Size(500.0, "volume")) is None
    assert not sizes_compatible(Size(500.0, "mass"), Size(500.0, "volume"), tolerance=1.0)
    assert not sizes_compatible(None, Size(500.0, "mass"), tolerance=1.0)
    assert not sizes_compatible(None, None, tolerance=1.0)


def test_size_ratio_is_the_larger_over_the_smaller_and_tolerance_is_inclusive() -> None:
    one, two = Size(1000.0, "volume"), Size(2000.0, "volume")

    assert size_ratio(one, two) == size_ratio(two, one) == 2.0
    assert sizes_compatible(one, Size(1020.0, "volume"), tolerance=0.02)
    assert not sizes_compatible(one, Size(1021.0, "volume"), tolerance=0.02)
    assert sizes_compatible(one, two, tolerance=1.0)


def test_size_buckets_put_close_sizes_together_and_a_bare_litre_with_its_millilitres() -> None:
    bucket = size_bucket(Size(1000.0, "volume"), width=0.05)
    assert bucket is not None

    assert size_bucket(Size(1.0, "bare"), width=0.05) == bucket
    assert size_bucket(Size(1040.0, "volume"), width=0.05) in {bucket, bucket + 1}
    assert size_bucket(Size(2000.0, "volume"), width=0.05) not in {bucket - 1, bucket, bucket + 1}
    assert size_bucket(None, width=0.05) is None


def test_describe_writes_a_size_back_with_its_base_unit() -> None:
    assert Size(500.0, "mass").describe() == "500g"
    assert Size(12.0, "count").describe() == "12pcs"
    assert Size(0.485, "bare").describe() == "0.485"


def test_a_six_pack_of_375ml_is_described_as_such() -> None:
    assert Size(2250.0, "volume", 6).describe() == "6 x 375mL"


def test_approx_with_a_dot_before_a_bare_number_is_read() -> None:
    assert parse_size("approx. 0.485") == Size(0.485, "bare")


def test_a_pack_its_name_states_is_kept_with_the_total_size_and_gives_one_item() -> None:
    milk = _product("freshmart", "1", "Full Cream Long Life Milk 6 pack", brand="Devondale", size="1.2l")

    assert milk.size == Size(1200.0, "volume", 6)
    assert milk.size.unit == Size(200.0, "volume")
    assert milk.kind == "full cream long life milk"
    assert _product("freshmart", "2", "Full Cream Milk", size="1.2l").size == Size(1200.0, "volume")
    assert _product("freshmart", "3", "Eggs 12 pack", size="12 pack").size == Size(12.0, "count")


# --- products ----------------------------------------------------------------------------------


def test_the_brand_field_is_stripped_from_the_start_of_the_name() -> None:
    eggs = _product("freshmart", "1", "Pace Farm Free Range Eggs 12 pack", brand="Pace Farm")

    assert (eggs.brand, eggs.kind, eggs.title) == (
        "pace farm",
        "free range eggs",
        "pace farm free range eggs",
    )
    assert eggs.size == Size(12.0, "count")


def test_a_brand_not_at_the_start_of_the_name_stays_in_the_kind() -> None:
    sauce = _product("freshmart", "1", "Pasta Sauce by Dolmio 500g", brand="Dolmio")

    assert (sauce.brand, sauce.kind) == ("dolmio", "pasta sauce by dolmio")


@pytest.mark.parametrize(
    ("brands", "brand", "kind"),
    [
        ({"pace", "pace farm"}, "pace farm", "free range eggs"),
        ({"pace"}, "pace", "farm free range eggs"),
        (set(), None, "pace farm free range eggs"),
    ],
)
def test_a_missing_brand_is_the_longest_known_brand_starting_the_name(
    brands: set[str], brand: str | None, kind: str
) -> None:
    eggs = parse_product(chain="freshmart", sku="1", name="Pace Farm Free Range Eggs", brands=brands)

    assert (eggs.brand, eggs.kind) == (brand, kind)


def test_apostrophes_and_ampersands_are_normalised() -> None:
    sauce = _product("freshmart", "1", "Leggo\u2019s Tomato & Basil 500g", brand="Leggo's")

    assert (sauce.brand, sauce.kind) == ("leggos", "tomato and basil")


def test_a_name_that_is_only_the_brand_keeps_the_brand_as_its_kind() -> None:
    assert _product("freshmart", "1", "Vegemite", brand="Vegemite").kind == "vegemite"


def test_word_order_and_spaces_in_the_brand_do_not_change_the_key() -> None:
    one = _product("freshmart", "1", "Free Range Eggs", brand="Pace Farm")
    other = _product("valueway", "2", "Pace Farm Eggs Free Range", brand="Pace Farm")
    cider = _product("freshmart", "3", "25 Degrees South Cider", brand="25 Degrees South")
    spelt = _product("valueway", "4", "25degrees South Cider", brand="25degrees South")

    assert one.key == other.key == ("pacefarm", "eggs free range")
    assert cider.brand_key == spelt.brand_key == "25degreessouth"
    assert cider.key == spelt.key
    assert one.key != _product("greengrocer", "5", "Cage Eggs", brand="Pace Farm").key


def test_accents_are_folded_so_german_words_stay_whole() -> None:
    assert normalise("Käse-Aufstrich Grüße") == "kase aufstrich grusse"


def test_trigrams_ignore_how_a_compound_is_written() -> None:
    together, apart = ngram_vector("Rahmcamembert", 512), ngram_vector("Rahm-Camembert", 512)

    assert float(together @ apart) == pytest.approx(1.0)
    assert float(together @ ngram_vector("Bergkäse", 512)) < 0.3
    assert not ngram_vector("", 512).any()


def _listings(chain: str, first: str, kinds: list[str]) -> list[tuple[str, str, str | None]]:
    return [(chain, f"{first} {kind} 500g", None) for kind in kinds]


KINDS = ["Vollmilch", "Joghurt", "Butter", "Topfen", "Schlagobers", "Rahm", "Kefir", "Buttermilch"]


def test_leading_words_only_one_chain_uses_on_many_names_are_its_house_brand() -> None:
    listings = [
        *_listings("hofer", "MILFINA", KINDS),
        *_listings("hofer", "ZURÜCK ZUM URSPRUNG", KINDS),
        *_listings("hofer", "Bio", KINDS),
        *_listings("unimarkt", "Bio", KINDS[:2]),
        *_listings("unimarkt", "Jeden Tag", KINDS),
    ]

    # "bio" starts names at both chains: a word of the kind, nobody's brand.
    assert house_brands(listings) == {"milfina", "zuruck zum ursprung", "jeden tag"}


def test_a_brand_another_chain_names_and_a_lone_chain_give_no_house_brand() -> None:
    named_elsewhere = [
        *_listings("hofer", "Milfina", KINDS),
        ("lidl", "Milfina Skyr 500g", "Milfina Premium"),
    ]
    few = _listings("hofer", "Milfina", KINDS[:3]) + _listings("lidl", "Milbona", KINDS[:3])

    assert house_brands(named_elsewhere) == set()
    assert house_brands(few) == set()
    assert house_brands(_listings("hofer", "Milfina", KINDS)) == set()


def test_known_brands_include_the_house_brands_learned_from_names() -> None:
    descriptions = [
        *(Description("hofer", f"h{i}", f"MILFINA {kind}") for i, kind in enumerate(KINDS)),
        *(Description("lidl", f"l{i}", f"Milbona {kind}") for i, kind in enumerate(KINDS)),
    ]

    assert known_brands(descriptions) == {"hofer", "lidl", "milfina", "milbona"}


# --- matching: L1 and L2 -----------------------------------------------------------------------


def test_the_same_barcode_at_another_chain_is_identical() -> None:
    index = _index(
        _milk("freshmart", barcode=GTIN_MILK),
        _milk("valueway", name="Pauls Dairy Fresh Milk 2 Litre", barcode=GTIN_MILK),
    )
    at = index.position("freshmart", "milk")
    assert at is not None

    [match, *_] = index.find([at], Policy())[at]

    assert (match.level, index.products[match.other].chain, match.score) == ("L1", "valueway", 1.0)
    assert GTIN_MILK in match.reason


def test_the_same_brand_name_and_size_without_barcode_is_identical() -> None:
    index = _index(
        _milk("freshmart", barcode=GTIN_MILK), _milk("greengrocer", name="Pauls Milk Full Cream 2 Litre")
    )
    at = index.position("freshmart", "milk")
    assert at is not None

    [match, *_] = index.find([at], Policy())[at]

    assert (match.level, index.products[match.other].chain) == ("L1", "greengrocer")
    assert match.reason == "same brand, name and size"
    assert _links(index, "greengrocer", "milk")[0] == ("L1", "freshmart", "milk")


def test_another_listing_at_the_same_chain_is_never_the_same_item() -> None:
    index = _index(_milk("freshmart", barcode=GTIN_MILK), _milk("freshmart", "milk-2", barcode=GTIN_MILK))

    assert _at(_links(index, "freshmart", "milk"), "L1", "L2") == set()


def test_different_global_barcodes_are_different_items_whatever_the_names() -> None:
    index = _index(_milk("freshmart", barcode=GTIN_MILK), _milk("valueway", barcode=GTIN_OTHER))

    assert _at(_links(index, "freshmart", "milk"), "L1", "L2") == set()


def test_an_in_store_barcode_does_not_tell_items_apart() -> None:
    index = _index(_milk("freshmart", barcode=GTIN_MILK), _milk("valueway", barcode="2100000000017"))

    assert _links(index, "freshmart", "milk")[0] == ("L1", "valueway", "milk")


def test_a_renamed_listing_of_the_same_brand_and_size_is_near_identical() -> None:
    index = _index(
        _milk("freshmart", barcode="2100000000017"),
        _milk("valueway", name="Pauls Milk Full Cream Dairy 2L", barcode="2200000000024"),
    )
    at = index.position("freshmart", "milk")
    assert at is not None

    [match] = [match for match in index.find([at], Policy())[at] if match.level == "L2"]

    assert index.products[match.other].chain == "valueway"
    assert Policy().l2_min_score <= match.score < 1.0
    assert "alike" in match.reason


def test_another_size_is_neither_identical_nor_near_identical() -> None:
    index = _index(_milk("freshmart"), _milk("valueway", name="Pauls Full Cream Milk 1L"))

    links = _links(index, "freshmart", "milk")

    assert _at(links, "L1", "L2") == set()
    assert ("valueway", "milk") in _at(links, "L4")


def test_another_brand_of_the_same_name_and_size_is_not_near_identical() -> None:
    index = _index(
        _milk("freshmart"),
        _product("valueway", "milk", "Dairy Farmers Full Cream Milk 2L", brand="Dairy Farmers"),
    )

    assert _links(index, "freshmart", "milk") == [("L3", "valueway", "milk")]


def test_an_organic_variant_is_not_near_identical_to_a_plain_item_already_listed_at_its_chain() -> None:
    index = _index(
        _milk("freshmart", "plain"),
        _milk("freshmart", "organic", name="Pauls Organic Full Cream Milk 2L"),
        _milk("valueway", "plain"),
    )

    organic = _links(index, "freshmart", "organic")

    assert _at(organic, "L1", "L2") == set()
    assert ("valueway", "plain") in _at(organic, "L4")
    assert _at(_links(index, "valueway", "plain"), "L1") == {("freshmart", "plain")}


def test_a_pack_is_near_identical_to_a_listing_sized_as_one_of_its_items_both_ways() -> None:
    pack = _product("freshmart", "pack", "Long Life Milk 6 pack", brand="Devondale", size="1.2l")
    item = _product("valueway", "item", "Long Life Milk", brand="Devondale", size="0.2")
    index = _index(pack, item)
    at = index.position("freshmart", "pack")
    assert at is not None

    [match] = index.find([at], Policy())[at]

    assert (match.level, index.products[match.other].sku) == ("L2", "item")
    assert match.reason.startswith("sized as one of a pack")
    # The same names would score 1: an item of the pack is less surely the pack itself.
    assert match.score == pytest.approx(1.0 - Policy().l2_pack_penalty, abs=1e-4)
    assert _at(_links(index, "valueway", "item"), "L2") == {("freshmart", "pack")}
    single = _product("freshmart", "pack", "Long Life Milk", brand="Devondale", size="1.2l")
    assert _at(_links(_index(single, item), "freshmart", "pack"), "L1", "L2") == set()


def test_a_plain_item_with_an_identical_listing_at_a_chain_has_no_near_identical_there() -> None:
    index = _index(
        _milk("freshmart", "plain"),
        _milk("freshmart", "organic", name="Pauls Organic Full Cream Milk 2L"),
        _milk("valueway", "plain"),
    )

    assert _at(_links(index, "valueway", "plain"), "L2") == set()


# --- matching: L3, L4, within, policy ----------------------------------------------------------


def test_a_store_brand_of_the_same_kind_and_comparable_size_is_another_brand() -> None:
    index = _index(
        _milk("freshmart", "2l"),
        _milk("freshmart", "1l", name="Pauls Full Cream Milk 1L"),
        _product("valueway", "own", "Valueway Full Cream Milk 2L", brand="Valueway", category="Dairy"),
    )
    at = index.position("valueway", "own")
    assert at is not None

    matches = index.find([at], Policy())[at]

    assert [(m.level, index.products[m.other].sku) for m in matches] == [("L3", "2l"), ("L3", "1l")]
    assert matches[0].score > matches[1].score
    assert "another brand" in matches[0].reason
    assert "2000mL" in matches[0].reason


def test_a_related_product_of_the_same_category_is_l4_and_another_category_is_not() -> None:
    index = _index(
        _milk("freshmart"),
        _product("valueway", "powder", "Pauls Full Cream Milk Powder 1kg", brand="Pauls", category="Dairy"),
        _product(
            "greengrocer", "powder", "Pauls Full Cream Milk Powder 1kg", brand="Pauls", category="Pantry"
        ),
        _product("greengrocer", "bread", "Tip Top White Bread 700g", brand="Tip Top", category="Dairy"),
    )

    assert _links(index, "freshmart", "milk") == [("L4", "valueway", "powder")]


def test_chains_own_categories_never_meet_but_their_shared_category_does() -> None:
    def described(chain: str, sku: str, name: str, category: str, shared: str | None) -> ParsedProduct:
        return parse_product(
            chain=chain, sku=sku, name=name, brand="Pauls", category=category, shared_category=shared
        )

    def milk(shared: str | None) -> ParsedProduct:
        return described("freshmart", "milk", "Pauls Full Cream Milk 2L", "Dairy, Eggs & Fridge", shared)

    def powder(chain: str, category: str, shared: str | None) -> ParsedProduct:
        return described(chain, "powder", "Pauls Full Cream Milk Powder 1kg", category, shared)

    unmapped = _index(milk(None), powder("valueway", "dairy-eggs-fridge/milk", None))
    assert _links(unmapped, "freshmart", "milk") == []
    half_mapped = _index(milk("dairy"), powder("valueway", "dairy-eggs-fridge/milk", None))
    assert _links(half_mapped, "freshmart", "milk") == []

    mapped = _index(
        milk("dairy"),
        powder("valueway", "dairy-eggs-fridge/milk", "dairy"),
        powder("greengrocer", "Dairy", "pantry"),
    )
    assert _links(mapped, "freshmart", "milk") == [("L4", "valueway", "powder")]


def test_a_shared_category_never_equals_a_chain_category_of_the_same_words() -> None:
    shared = _product("freshmart", "a", "Milk")
    assert parse_product(chain="x", sku="a", name="Milk", shared_category="dairy").category == "shared:dairy"
    assert parse_product(chain="x", sku="a", name="Milk", category="Dairy").category == "dairy"
    assert shared.category is None


def test_within_keeps_only_substitutes_at_that_chain() -> None:
    index = _index(
        _milk("freshmart", barcode=GTIN_MILK),
        _milk("valueway", barcode=GTIN_MILK),
        _milk("greengrocer"),
        _product("valueway", "own", "Valueway Full Cream Milk 2L", brand="Valueway", category="Dairy"),
        _product(
            "greengrocer", "own", "Greengrocer Full Cream Milk 2L", brand="Greengrocer", category="Dairy"
        ),
    )

    links = _links(index, "freshmart", "milk", within="valueway")

    assert links == [("L1", "valueway", "milk"), ("L3", "valueway", "own")]
    assert _links(index, "freshmart", "milk", within="nowhere") == []


def test_policy_keep_caps_each_level_and_l1_is_ordered_by_chain_and_sku() -> None:
    index = _index(
        _milk("valueway", barcode=GTIN_MILK),
        _milk("greengrocer", barcode=GTIN_MILK),
        _milk("freshmart", barcode=GTIN_MILK),
        _product("valueway", "own", "Valueway Full Cream Milk 2L", brand="Valueway", category="Dairy"),
        _product(
            "greengrocer", "own", "Greengrocer Full Cream Milk 2L", brand="Greengrocer", category="Dairy"
        ),
    )
    policy = Policy(keep=(("L1", 1), ("L2", 1), ("L3", 1), ("L4", 1)))

    assert _at(_links(index, "valueway", "milk"), "L1") == {("freshmart", "milk"), ("greengrocer", "milk")}
    capped = _links(index, "valueway", "milk", policy=policy)

    assert capped[0] == ("L1", "freshmart", "milk")
    assert max(Counter(level for level, _, _ in capped).values()) == 1
    assert _at(capped, "L3") == {("valueway", "own")}


def test_find_is_deterministic_and_a_batch_equals_one_product_at_a_time() -> None:
    products = [
        _milk("freshmart", barcode=GTIN_MILK),
        _milk("valueway", barcode=GTIN_MILK),
        _milk("greengrocer", name="Pauls Milk Full Cream Dairy 2L"),
        _milk("greengrocer", "1l", name="Pauls Full Cream Milk 1L"),
        _product("valueway", "own", "Valueway Full Cream Milk 2L", brand="Valueway", category="Dairy"),
    ]
    first, second = _index(*products), _index(*products)
    everyone = list(range(len(products)))

    batch = first.find(everyone, Policy())

    assert batch == second.find(everyone, Policy())
    assert batch == {at: first.find([at], Policy())[at] for at in everyone}


def _tying_products() -> list[ParsedProduct]:
    """One kind of milk under many brands and chains, so most candidates tie on score."""
    products = [
        _product(chain, f"{brand}-{size}", f"{brand} Full Cream Milk {size}", brand=brand, category="Dairy")
        for brand in (f"Brand{number:02d}" for number in range(16))
        for chain in ("freshmart", "valueway", "greengrocer")
        for size in ("2L", "1L")
    ]
    # Two listings of one renamed item at one chain tie at L2, where a chain offers only one of them.
    renamed = "Brand00 Milk Full Cream Dairy 2L"
    products += [_product("cornerstore", sku, renamed, brand="Brand00", category="Dairy") for sku in "ab"]
    return products


def _found(index: Index, policy: Policy, *, batch: bool) -> dict[ProductKey, list[Ranking]]:
    """Return every product's substitutes as (chain, sku, level, score), found in one batch or one by one."""
    everyone = list(range(len(index)))
    found = index.find(everyone, policy) if batch else {at: index.find([at], policy)[at] for at in everyone}
    named = {at: (index.products[at].chain, index.products[at].sku) for at in everyone}
    return {
        named[at]: [(*named[match.other], match.level, match.score) for match in matches]
        for at, matches in found.items()
    }


@pytest.mark.parametrize("policy", [Policy(), Policy(shortlist=12)], ids=["default", "short-shortlist"])
def test_equal_scores_rank_the_same_whatever_order_products_arrived_in(policy: Policy) -> None:
    products = _tying_products()
    shuffled = products[::2] + products[1::2][::-1]

    arrived = _found(_index(*products), policy, batch=False)
    rebuilt = _found(_index(*shuffled), policy, batch=True)

    assert rebuilt == arrived
    assert arrived == _found(_index(*products[::-1]), policy, batch=True)
    assert {level for matches in arrived.values() for _, _, level, _ in matches} == {"L1", "L2", "L3", "L4"}
    assert all(score == round(score, 4) for matches in arrived.values() for *_, score in matches)


def test_putting_a_product_again_replaces_it_and_its_links() -> None:
    index = _index(_milk("freshmart", barcode=GTIN_MILK), _milk("valueway", barcode=GTIN_MILK))

    replacement = _milk("valueway", barcode=GTIN_OTHER)
    index.put(replacement, _vector(replacement))

    assert len(index) == 2
    assert _at(_links(index, "freshmart", "milk"), "L1", "L2") == set()


def test_two_chains_house_brands_of_one_kind_and_size_are_another_brand_not_one() -> None:
    brands = {"milfina", "jeden tag"}
    hofer = parse_product(chain="hofer", sku="h", name="MILFINA Vollmilch 3,5% 1l", brands=brands)
    unimarkt = parse_product(chain="unimarkt", sku="u", name="Jeden Tag Vollmilch 3,5% 1l", brands=brands)

    links = _links(_index(hofer, unimarkt), "hofer", "h")

    assert links == [("L3", "unimarkt", "u")]


def test_a_maker_and_its_line_named_in_the_other_listing_are_one_brand() -> None:
    coles = _product("coles", "c", "Yopro Vanilla Yoghurt 700g", brand="Danone")
    woolworths = _product("woolworths", "w", "Yopro Danone Vanilla Yoghurt 700g", brand="Yopro")
    other = _product("woolworths", "o", "Jalna Vanilla Yoghurt 700g", brand="Jalna")

    links = _links(_index(coles, woolworths, other), "coles", "c")

    assert _at(links, "L1", "L2") == {("woolworths", "w")}
    assert ("woolworths", "o") in _at(links, "L3")


def test_a_brand_the_other_shop_leaves_out_or_writes_possessive_is_still_its_brand() -> None:
    breeze = _product("coles", "b", "Almond Breeze Unsweetened Almond Milk 1L", brand="Blue Diamond")
    unnamed = _product("woolworths", "b", "Almond Breeze Unsweetened Almond Milk 1L")
    soup = _product("coles", "s", "Peri Peri Chicken Soup 420g", brand="Whitlocks")
    possessive = _product("woolworths", "s", "F. Whitlock & Sons Peri Peri Chicken Soup 420g")
    plain = _product("woolworths", "p", "Unsweetened Almond Milk 1L")
    index = _index(breeze, unnamed, soup, possessive, plain)

    assert _at(_links(index, "coles", "b"), "L1", "L2") == {("woolworths", "b")}
    assert _at(_links(index, "coles", "s"), "L1", "L2") == {("woolworths", "s")}
    # Another name without the brand is not thereby its item: "Unsweetened Almond Milk" is any brand's.
    assert ("woolworths", "p") not in _at(_links(index, "coles", "b"), "L1", "L2")


def test_l2_candidates_include_those_a_product_keeps_out_of_its_own_list() -> None:
    index = _index(
        _milk("freshmart", "plain"),
        _milk("freshmart", "renamed", name="Pauls Milk Full Cream Dairy 2L"),
        _milk("valueway", "new", name="Pauls Milk Full Cream Dairy 2L"),
    )
    new = index.position("valueway", "new")
    plain = index.position("freshmart", "plain")
    assert new is not None
    assert plain is not None

    # Its own list names only its identical listing at freshmart, yet the plain one is alike enough
    # to take it as L2 (were it not listed there already): a new product recomputes both lists.
    assert _at(_links(index, "valueway", "new"), "L1", "L2") == {("freshmart", "renamed")}
    assert plain in index.near_identical_candidates(new, Policy())


def test_a_two_word_variant_counts_as_one_difference_and_origin_is_no_variant() -> None:
    assert variant_mask("blueberry low fat muffin mix") ^ variant_mask(
        "blueberry muffin mix"
    ) == variant_mask("low fat")
    assert bin(variant_mask("low fat")).count("1") == 1
    assert bin(variant_mask("organic light")).count("1") == 2
    assert variant_mask("australian pitted prunes") == variant_mask("prunes pitted") == 0


def test_the_usual_variant_and_phrases_naming_another_thing_are_no_variant() -> None:
    assert variant_mask("plain flour") == variant_mask("bagels original") == 0
    assert variant_mask("free range eggs") == variant_mask("extra virgin olive oil") == 0
    assert variant_mask("grain loaf low gi") == 0
    assert variant_mask("woolworths free from lactose milk") == variant_mask("lactose free milk") != 0
    assert variant_mask("free range eggs fat free") == variant_mask("fat free")


def test_words_filling_one_place_in_a_brands_names_are_learned_as_telling_items_apart() -> None:
    listings = [
        *(
            (chain, brand, f"pasta {shape}")
            for chain, brand in (("coles", "barilla"), ("woolworths", "barilla"))
            for shape in ("penne", "farfalle")
        ),
        ("woolworths", "san remo", "penne pasta"),
        ("woolworths", "san remo", "farfalle pasta"),
        ("woolworths", "san remo", "fusilli pasta"),
        *(("coles", brand, f"{word} milk") for brand in ("pauls", "oak", "a2") for word in ("light", "skim")),
        *(
            ("coles", brand, f"strawberries {kind}")
            for brand in ("oak", "nippys")
            for kind in ("jam", "milk")
        ),
    ]

    learned = distinguishing_words(listings)

    # Fusilli fills one place only; light and skim are fixed variant words, counted apart.
    assert learned == {"penne", "farfalle"}
    assert distinguishing_words(listings, min_places=2) == {"penne", "farfalle", "jam", "milk"}
    assert [word_stem(w) for w in ("strawberries", "tomatoes", "peaches", "sausages", "glass")] == [
        "strawberry",
        "tomato",
        "peach",
        "sausage",
        "glass",
    ]


def test_l3_takes_off_a_candidate_lacking_a_word_of_the_query_that_tells_items_apart() -> None:
    policy = Policy(ngram_weight=0.0)
    index = Index(dimensions=ENCODER.dimensions, distinguishing=frozenset({"farfalle", "penne"}))
    products = [
        _product("coles", "q", "Farfalle Italian Pasta 500g", brand="Cucina"),
        _product("woolworths", "penne", "Penne Italian Pasta 500g", brand="Zafarelli"),
        _product("woolworths", "farfalle", "Farfalle Italian Pasta 500g", brand="Barilla"),
    ]
    for product in products:
        index.put(product, ENCODER.encode(["pasta"])[0])  # the model sees them all alike

    found = [m for m in index.find([0], policy)[0] if m.level == "L3"]

    assert [index.products[m.other].sku for m in found] == ["farfalle", "penne"]
    assert found[0].score - found[1].score == pytest.approx(policy.l3_missing_word_penalty, abs=1e-4)
    assert list(index.l3_features(0, np.arange(1, 3))["missing"]) == [1, 0]


def test_l4_ranks_a_related_product_of_a_near_size_before_one_far_off_or_unsized() -> None:
    policy = Policy(ngram_weight=0.0)
    index = Index(dimensions=ENCODER.dimensions)
    products = [
        _product("coles", "q", "Potato Mash 350g", brand="Coles"),
        _product("woolworths", "sachet", "Potato Mash Recipe Base 40g", brand="Coles"),
        _product("woolworths", "unsized", "Potato Mash Each", brand="Coles"),
        _product("woolworths", "tub", "Potato Mash With Butter 400g", brand="Coles"),
    ]
    for product in products:
        index.put(product, ENCODER.encode(["potato mash"])[0])

    found = {index.products[m.other].sku: m.score for m in index.find([0], policy)[0] if m.level == "L4"}

    near = 1.0 - policy.l4_size_weight * np.log2(400 / 350)
    assert found == pytest.approx({"tub": near, "sachet": 0.9, "unsized": 0.9}, abs=1e-4)


def test_a_product_of_its_chain_or_a_learned_house_brand_is_of_its_own_brand() -> None:
    own = {"essentials"}
    named = parse_product(chain="coles", sku="1", name="Frozen Peas", brand="Coles", own_brands=own)
    learned = parse_product(
        chain="woolworths", sku="2", name="Essentials Frozen Peas", brands=own, own_brands=own
    )
    maker = parse_product(chain="woolworths", sku="3", name="McCain Peas", brand="McCain", own_brands=own)

    assert (named.own_brand, learned.own_brand, maker.own_brand) == (True, True, False)


def test_listings_without_a_brand_are_one_item_only_when_their_names_are_the_same_letters() -> None:
    index = _index(
        _product("hofer", "h", "HAPPY HARVEST Semmelbrösel 1kg"),
        _product("unimarkt", "u", "Weltgold Semmelbrösel 1kg"),
        _product("mpreis", "m", "Happy Harvest Semmel-Brösel 1kg"),
    )

    links = _links(index, "hofer", "h", policy=Policy(l3_min_similarity=0.3))

    assert _at(links, "L1", "L2") == {("mpreis", "m")}
    assert _at(links, "L3") == {("unimarkt", "u")}


def test_trigrams_offer_a_compound_written_apart_that_the_embedding_misses() -> None:
    cheese = _product("hofer", "h", "Rahm-Camembert 125g", brand="Milfina")
    other = _product("unimarkt", "u", "Rahmcamembert 125g", brand="Jeden Tag")
    policy = Policy(ngram_weight=0.5)
    index = Index(dimensions=ENCODER.dimensions, ngram_weight=policy.ngram_weight)
    index.put(cheese, ENCODER.encode(["rahm camembert"])[0])
    index.put(other, -ENCODER.encode(["rahm camembert"])[0])  # the model sees nothing alike

    assert _links(index, "hofer", "h", policy=Policy(ngram_weight=0.5, l3_min_similarity=0.0)) == [
        ("L3", "unimarkt", "u")
    ]


def test_l3_features_are_what_its_score_weighs_and_the_score_never_exceeds_the_blend() -> None:
    policy = Policy(ngram_weight=0.3, l3_size_weight=0.2, l3_variant_penalty=0.05)
    milk = _product("hofer", "h", "Milfina Vollmilch 1l", brand="Milfina")
    index = Index(dimensions=ENCODER.dimensions, ngram_weight=policy.ngram_weight)
    others = [
        _product("unimarkt", "same", "Jeden Tag Vollmilch 1l", brand="Jeden Tag"),
        _product("unimarkt", "big", "Jeden Tag Vollmilch Light 2l", brand="Jeden Tag"),
        _product("unimarkt", "own", "Milfina Vollmilch 0,5l", brand="Milfina"),
        _product("unimarkt", "bag", "Jeden Tag Vollmilch 12 Stk", brand="Jeden Tag"),
    ]
    for product in (milk, *others):
        index.put(product, ENCODER.encode(["vollmilch"])[0])
    found = {index.products[m.other].sku: m for m in index.find([0], policy)[0] if m.level == "L3"}

    features = index.l3_features(0, np.arange(1, 5))

    meaning, letters, doublings = features["meaning"], features["letters"], features["doublings"]
    assert meaning == pytest.approx([1.0] * 4, abs=1e-5)
    assert letters[0] == pytest.approx(1.0, abs=1e-5)
    assert letters[1] < 1.0
    assert list(doublings[:3]) == pytest.approx([0.0, 1.0, 1.0])
    assert doublings[3] == np.inf
    assert list(features["tier"]) == [0, 0, 0, 0]
    assert list(features["variant"]) == [0, 1, 0, 0]
    assert list(features["eligible"]) == [1, 1, 0, 0]  # the same brand, and a count against a volume
    weight = policy.ngram_weight
    for at, sku in ((0, "same"), (1, "big")):
        blend = (1 - weight) * meaning[at] + weight * letters[at]
        penalty = policy.l3_size_weight * doublings[at] + policy.l3_variant_penalty * features["variant"][at]
        assert found[sku].score == pytest.approx(blend - penalty, abs=1e-4)
        assert found[sku].score <= blend + 1e-4


def test_similarities_read_slot_by_slot_or_as_a_matrix_equal_the_vectors_dot_products() -> None:
    index = Index(dimensions=ENCODER.dimensions, ngram_weight=0.4)
    flavours = ("vanilla", "strawberry", "choc chip", "mango", "caramel", "lemon", "honey", "coffee")
    for i in range(100):  # beyond the arrays' first capacity, so they grow
        product = _product("freshmart" if i % 2 else "valueway", f"s{i}", f"{flavours[i % 8]} yoghurt {i}")
        index.put(product, _vector(product))
    expected = index.vectors @ index.vectors.T
    meaning, letters = index.similarity_parts([3, 50, 99])

    assert meaning + letters == pytest.approx(expected[[3, 50, 99]], abs=1e-5)
    assert index.similarities(range(100)) == pytest.approx(expected, abs=1e-5)  # more than a few rows


# --- catalogue ---------------------------------------------------------------------------------


def _catalogue() -> Catalogue:
    return Catalogue(dimensions=ENCODER.dimensions, policy=Policy())


def _observe(catalogue: Catalogue, description: Description) -> dict[ProductKey, list[SubstituteRow]]:
    product = catalogue.parse(description)
    return catalogue.observe(product, _vector(product))


def _rows(rows: list[SubstituteRow] | None, level: Level = "L1") -> set[ProductKey]:
    return {(row.chain, row.sku) for row in rows or () if row.level == level}


def _milk_description(
    chain: str, sku: str = "milk", *, size: str = "2L", barcode: str | None = None
) -> Description:
    return Description(chain, sku, "Pauls Full Cream Milk", brand="Pauls", size=size, barcode=barcode)


def test_known_brands_are_the_named_brands_and_the_chains() -> None:
    descriptions = [
        Description(chain="fresh-mart", sku="1", name="Leggo's Pesto", brand="Leggo's"),
        Description(chain="valueway", sku="2", name="Milk"),
    ]

    assert known_brands(descriptions) == {"fresh mart", "leggos", "valueway"}


def test_parse_learns_brands_and_finds_them_in_later_names() -> None:
    catalogue = _catalogue()
    catalogue.parse(Description(chain="freshmart", sku="1", name="Pace Farm Eggs", brand="Pace Farm"))

    eggs = catalogue.parse(Description(chain="valueway", sku="2", name="Pace Farm Free Range Eggs 12pk"))
    own = catalogue.parse(Description(chain="valueway", sku="3", name="Valueway Free Range Eggs 12pk"))

    assert (eggs.brand, eggs.kind, eggs.size) == ("pace farm", "free range eggs", Size(12.0, "count"))
    assert own.brand == "valueway"


def test_observing_a_new_identical_product_also_returns_the_list_it_joins() -> None:
    catalogue = _catalogue()
    assert _observe(catalogue, _milk_description("freshmart", barcode=GTIN_MILK)) == {
        ("freshmart", "milk"): []
    }

    changed = _observe(catalogue, _milk_description("valueway", barcode=GTIN_MILK))

    assert set(changed) == {("freshmart", "milk"), ("valueway", "milk")}
    assert _rows(changed[("freshmart", "milk")]) == {("valueway", "milk")}
    assert _rows(list_of(catalogue, "freshmart", "milk")) == {("valueway", "milk")}
    assert _rows(list_of(catalogue, "valueway", "milk")) == {("freshmart", "milk")}
    assert changed[("valueway", "milk")] == [
        SubstituteRow(
            level="L1", chain="freshmart", sku="milk", score=1.0, reason=f"same barcode {GTIN_MILK}"
        )
    ]


def test_observing_an_unchanged_product_again_changes_nothing() -> None:
    catalogue = _catalogue()
    _observe(catalogue, _milk_description("freshmart", barcode=GTIN_MILK))
    _observe(catalogue, _milk_description("valueway", barcode=GTIN_MILK))

    assert _observe(catalogue, _milk_description("valueway", barcode=GTIN_MILK)) == {}


def test_a_product_that_no_longer_matches_leaves_its_neighbours_list() -> None:
    catalogue = _catalogue()
    _observe(catalogue, _milk_description("freshmart", barcode=GTIN_MILK))
    _observe(catalogue, _milk_description("valueway", barcode=GTIN_MILK))

    bread = Description(chain="valueway", sku="milk", name="Tip Top White Bread 700g", brand="Tip Top")
    changed = _observe(catalogue, bread)

    assert changed == {("freshmart", "milk"): [], ("valueway", "milk"): []}
    assert list_of(catalogue, "freshmart", "milk") == []
    assert list_of(catalogue, "nowhere", "milk") is None


def test_rebuild_finds_the_same_identical_links_as_incremental_observation() -> None:
    descriptions = [
        _milk_description("freshmart", barcode=GTIN_MILK),
        Description(chain="valueway", sku="own", name="Valueway Full Cream Milk 2L", category="Dairy"),
        _milk_description("greengrocer"),
        _milk_description("valueway", barcode=GTIN_MILK),
        _milk_description("greengrocer", "1l", size="1L"),
        _milk_description("valueway", "1l", size="1L", barcode=GTIN_OTHER),
        Description(chain="freshmart", sku="bread", name="Tip Top White Bread 700g", brand="Tip Top"),
    ]
    incremental, rebuilt = _catalogue(), _catalogue()
    products = []
    for description in descriptions:
        product = incremental.parse(description)
        incremental.observe(product, _vector(product))
        products.append(product)
    rebuilt.load(products, ENCODER.encode([product.kind for product in products]))

    lists = rebuilt.rebuild(chunk=3)

    assert set(lists) == {(product.chain, product.sku) for product in products}
    for chain, sku in lists:
        assert _rows(list_of(rebuilt, chain, sku)) == _rows(list_of(incremental, chain, sku))
    assert _rows(lists[("freshmart", "milk")]) == {("greengrocer", "milk"), ("valueway", "milk")}
    assert _rows(lists[("valueway", "1l")]) == {("greengrocer", "1l")}


def test_an_identical_listing_arriving_takes_its_item_off_a_near_identical_list_at_its_chain() -> None:
    # Minimums no pair here reaches: only the same-item levels can change these lists.
    policy = Policy(l3_min_similarity=0.99, l4_min_similarity=0.99)
    incremental = Catalogue(dimensions=ENCODER.dimensions, policy=policy)
    plain = Description("freshmart", "milk", "Pauls Full Cream Milk", brand="Pauls", size="2L")
    renamed = Description("valueway", "milk", "Pauls Milk Full Cream Dairy", brand="Pauls", size="2L")
    _observe(incremental, plain)
    _observe(incremental, renamed)
    assert _rows(list_of(incremental, "freshmart", "milk"), "L2") == {("valueway", "milk")}

    changed = _observe(incremental, Description("freshmart", "dairy", renamed.name, brand="Pauls", size="2L"))

    # Valueway's item is listed at freshmart now: it is that listing's, not another's under a new name.
    assert ("freshmart", "milk") in changed
    assert list_of(incremental, "freshmart", "milk") == []
    rebuilt = Catalogue(dimensions=ENCODER.dimensions, policy=policy)
    products = [incremental.index.products[at] for at in range(len(incremental.index))]
    rebuilt.load(products, [_vector(product) for product in products])
    rebuilt.rebuild()
    for chain, sku in ((product.chain, product.sku) for product in products):
        assert list_of(rebuilt, chain, sku) == list_of(incremental, chain, sku)


def test_adopted_lists_make_rebuild_report_only_real_changes() -> None:
    products = [
        _catalogue().parse(description)
        for description in (
            _milk_description("freshmart", barcode=GTIN_MILK),
            _milk_description("valueway", barcode=GTIN_MILK),
            _milk_description("greengrocer"),
        )
    ]
    vectors = ENCODER.encode([product.kind for product in products])
    first = _catalogue()
    first.load(products, vectors)
    stored = first.rebuild()
    assert first.rebuild() == {}

    restarted = _catalogue()
    restarted.load(products, vectors)
    stale = stored | {("valueway", "milk"): [], ("nowhere", "milk"): []}
    restarted.adopt(stale)

    assert restarted.rebuild() == {("valueway", "milk"): stored[("valueway", "milk")]}
    assert restarted.rebuild() == {}


# --- evaluation --------------------------------------------------------------------------------


def _score(scores: list[LevelScore], level: Level) -> LevelScore:
    [score] = [score for score in scores if score.level == level]
    return score


def test_evaluation_gives_precision_recall_and_mrr_of_known_rankings() -> None:
    gold = [GoldPair("q1", "r1", "L1"), GoldPair("q2", "r2", "L1"), GoldPair("q3", "r3", "L1")]
    ranked = {
        "q1": [Ranked("r1", "L1", 1.0)],
        "q2": [Ranked("r2", "L2", 0.9), Ranked("x", "L1", 1.0)],
        "q3": [],
    }

    [score] = evaluate(gold, ranked, k=2)

    assert (score.level, score.pairs) == ("L1", 3)
    assert score.precision == pytest.approx(1 / 2)
    assert score.recall_at_1 == pytest.approx(1 / 3)
    assert score.recall_at_k == pytest.approx(2 / 3)
    assert score.mrr == pytest.approx((1 + 1 / 2) / 3)
    assert evaluate(gold, ranked, k=1)[0].recall_at_k == pytest.approx(1 / 3)


def test_a_same_item_pair_found_only_as_an_alternative_does_not_count() -> None:
    gold = [GoldPair("q", "r", "L1"), GoldPair("q", "alt", "L4")]
    ranked = {"q": [Ranked("r", "L3", 0.9), Ranked("alt", "L3", 0.95)]}

    scores = evaluate(gold, ranked, k=10)

    assert [score.level for score in scores] == ["L1", "L4"]
    assert _score(scores, "L1") == LevelScore("L1", 1, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert _score(scores, "L4") == LevelScore("L4", 1, 1.0, 1.0, 1.0, 1.0, 0.0)


def test_further_acceptable_answers_count_first_in_their_own_recall_and_leave_the_strict_one() -> None:
    gold = [GoldPair("q1", "r1", "L3"), GoldPair("q2", "r2", "L3")]
    ranked = {
        "q1": [Ranked("also-good", "L3", 0.9), Ranked("r1", "L3", 0.8)],
        "q2": [Ranked("wrong", "L3", 0.9), Ranked("also-good", "L3", 0.8)],
    }
    acceptable = [GoldPair("q1", "also-good", "L3"), GoldPair("q2", "also-good", "L3")]

    [score] = evaluate(gold, ranked, k=5, acceptable=acceptable)

    assert (score.recall_at_1, score.mrr) == (0.0, 0.25)
    assert score.acceptable_at_1 == pytest.approx(1 / 2)
    assert evaluate(gold, ranked, k=5)[0].acceptable_at_1 is None


def test_within_a_tier_alternatives_rank_by_level_then_score() -> None:
    gold = [GoldPair("q", "best", "L3")]
    ranked = {"q": [Ranked("l4", "L4", 0.99), Ranked("other", "L3", 0.8), Ranked("best", "L3", 0.7)]}

    score = _score(evaluate(gold, ranked, k=10), "L3")

    assert (score.recall_at_1, score.mrr, score.recall_at_k) == (0.0, 0.5, 1.0)


def test_lists_kept_up_product_by_product_equal_a_rebuild_when_scores_tie() -> None:
    products = _tying_products()
    incremental = _catalogue()
    for product in products:
        incremental.observe(product, _vector(product))
    shuffled = products[1::2] + products[::2][::-1]
    rebuilt = _catalogue()
    rebuilt.load(shuffled, [_vector(product) for product in shuffled])

    rebuilt.rebuild(chunk=7)

    for product in products:
        kept = list_of(incremental, product.chain, product.sku)
        assert kept == list_of(rebuilt, product.chain, product.sku), (product.chain, product.sku)
    assert sum(len(list_of(incremental, p.chain, p.sku) or ()) for p in products) > len(products)
