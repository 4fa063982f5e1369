"""Product catalogs for the storefront: a built-in generator with known equivalences, and real AU names."""

import json
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Literal

EquivalenceLevel = Literal["L1", "L2", "L3"]

DEFAULT_CATEGORIES = ("dairy", "bakery", "pantry", "drinks", "frozen", "produce", "meat", "household")
CATEGORY_NAMES = {
    "dairy": "Dairy, Eggs & Fridge",
    "bakery": "Bakery",
    "pantry": "Pantry",
    "drinks": "Drinks",
    "frozen": "Frozen",
    "produce": "Fruit & Vegetables",
    "meat": "Meat & Seafood",
    "household": "Household",
}


@dataclass(frozen=True, slots=True)
class Product:
    """One product as a chain lists it, with the chain's base regular price."""

    sku: str
    name: str
    brand: str | None
    size: str
    category: str
    barcode: str | None
    """None where the source names none: a real scrape's products (an invented one would match nothing)."""
    base_cents: int


@dataclass(frozen=True, slots=True)
class ChainCatalog:
    """A chain and the products it sells, in shelf order."""

    slug: str
    name: str
    store_prefix: str
    products: tuple[Product, ...]


@dataclass(frozen=True, slots=True)
class Equivalence:
    """Two listings of the same or an interchangeable item: ground truth for substitutions."""

    level: EquivalenceLevel
    chain_a: str
    sku_a: str
    chain_b: str
    sku_b: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every chain's products and the known equivalences between them."""

    chains: tuple[ChainCatalog, ...]
    equivalences: tuple[Equivalence, ...]


def category_name(slug: str) -> str:
    """Return the shop's display name of a category."""
    return CATEGORY_NAMES.get(slug, slug.replace("-", " ").title())


def ean13(first_twelve: str) -> str:
    """Return the 13-digit EAN whose first twelve digits are given, with its check digit."""
    weighted = sum(int(digit) * (3 if position % 2 else 1) for position, digit in enumerate(first_twelve))
    return first_twelve + str((10 - weighted % 10) % 10)


def _seeded(*parts: object) -> random.Random:
    """Return a random generator fixed by the parts (string seeds are hashed with SHA-512, not salted)."""
    return random.Random("/".join(str(part) for part in parts))


def _random_ean(rng: random.Random, prefix: str) -> str:
    """Return a random valid EAN-13 starting with the prefix ("93" is Australia's GS1 prefix)."""
    digits = "".join(str(rng.randrange(10)) for _ in range(12 - len(prefix)))
    return ean13(prefix + digits)


def _shelf_cents(rng: random.Random, cents: float) -> int:
    """Round a price the way shelves show it: to the ten cents, half of them one cent under."""
    tens = max(100, round(cents / 10) * 10)
    return tens - 1 if rng.random() < 0.5 else tens


def _join(*parts: str | None) -> str:
    """Join the non-empty parts with spaces."""
    return " ".join(part for part in parts if part)


# --- the built-in world ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    """A kind of product, its sizes with typical prices in cents, and its national brands."""

    category: str
    name: str
    alias: str
    sizes: tuple[tuple[str, int], ...]
    brands: tuple[str | None, ...]


# category | kind | another name for it | sizes with typical prices in cents | national brands ("-": none)
_KIND_TABLE = """
dairy | Full Cream Milk | Whole Milk | 1L 195, 2L 320, 3L 450 | Dairy Farmers, Pauls, a2
dairy | Lite Milk | Reduced Fat Milk | 1L 200, 2L 330 | Dairy Farmers, Pauls, Pura
dairy | Greek Yoghurt | Greek Style Yogurt | 500g 450, 1kg 750 | Chobani, Jalna, Farmers Union
dairy | Tasty Cheese Block | Tasty Cheddar | 500g 800, 1kg 1400 | Bega, Mainland, Coon
dairy | Salted Butter | Butter Block Salted | 250g 450, 500g 750 | Western Star, Lurpak, Mainland
dairy | Free Range Eggs | Eggs Free Range | 6 pack 380, 12 pack 650 | Pace Farm, Sunny Queen, Manning Valley
dairy | Thickened Cream | Cooking & Whipping Cream | 300mL 320, 600mL 550 | Bulla, Pauls, Dairy Farmers
dairy | Shredded Mozzarella | Grated Mozzarella | 250g 450, 500g 750 | Perfect Italiano, Bega, Mainland
bakery | White Sandwich Bread | White Bread Sandwich Slice | 650g 350, 700g 380 | Tip Top, Wonder, Helga's
bakery | Wholemeal Bread | Wholemeal Sandwich Loaf | 700g 420 | Tip Top, Helga's, Burgen
bakery | English Muffins | Muffins English Style | 6 pack 400 | Tip Top, Abbott's
bakery | Wraps | Tortillas | 8 pack 420, 12 pack 580 | Mission, Old El Paso
bakery | Crumpets | Crumpet Rounds | 6 pack 350, 10 pack 500 | Golden, Tip Top
bakery | Butter Croissants | Croissants | 4 pack 550, 6 pack 750 | Le Petit, Baker's Oven
bakery | Plain Bagels | Bagels Original | 4 pack 500 | Abbott's, Bagel Co
pantry | Spaghetti | Spaghetti Pasta No.5 | 500g 200, 1kg 350 | San Remo, Barilla, Latina
pantry | Basmati Rice | Rice Basmati | 1kg 450, 5kg 1600 | SunRice, Tilda, Mahatma
pantry | Plain Flour | Flour All Purpose | 1kg 200, 2kg 350 | White Wings, Defiance, Lighthouse
pantry | Crunchy Peanut Butter | Peanut Butter Crunchy | 375g 450, 750g 750 | Kraft, Bega, Sanitarium
pantry | Diced Tomatoes | Chopped Tomatoes | 400g 150, 4 x 400g 520 | Ardmona, SPC, Val Verde
pantry | Tuna in Springwater | Tuna Chunks Springwater | 95g 180, 425g 600 | John West, Sirena, Safcol
pantry | Corn Flakes | Cornflakes Cereal | 380g 550, 725g 800 | Kellogg's, Uncle Tobys, Sanitarium
pantry | Extra Virgin Olive Oil | Olive Oil Extra Virgin | 500mL 1100, 1L 1900 | Cobram Estate, Moro, Bertolli
pantry | Instant Coffee | Coffee Instant Classic | 100g 900, 200g 1600 | Nescafe, Moccona, Robert Timms
drinks | Cola Soft Drink | Cola | 1.25L 300, 2L 400, 6 x 375mL 900 | Coca-Cola, Pepsi, Kirks
drinks | Orange Juice | Juice Orange | 2L 550, 3L 750 | Nudie, Daily Juice, Golden Circle
drinks | Mineral Water | Sparkling Water | 1.25L 200, 6 x 375mL 600 | San Pellegrino, Schweppes
drinks | Spring Water | Still Water | 600mL 200, 24 x 600mL 1200 | Mount Franklin, Pump, Frantelle
drinks | Lemonade | Lemonade Soft Drink | 1.25L 300, 2L 380 | Schweppes, Sprite, Kirks
drinks | Green Tea Bags | Tea Green | 100 pack 600 | Lipton, Twinings, Dilmah
drinks | Energy Drink | Energy Drink Can | 250mL 300, 4 x 250mL 1000 | Red Bull, V, Monster
drinks | Apple Juice | Juice Apple | 2L 500 | Golden Circle, Nudie, Daily Juice
frozen | Frozen Peas | Garden Peas Frozen | 500g 300, 1kg 500 | Birds Eye, McCain, Edgell
frozen | Straight Cut Chips | Chips Straight Cut | 1kg 450, 2kg 750 | McCain, Birds Eye
frozen | Vanilla Ice Cream | Ice Cream Vanilla | 2L 700, 4L 1100 | Streets, Peters, Bulla
frozen | Margherita Pizza | Pizza Margherita | 400g 750, 500g 850 | McCain, Dr. Oetker, Papa Giuseppi's
frozen | Fish Fingers | Crumbed Fish Fingers | 375g 550, 1kg 1200 | Birds Eye, I&J
frozen | Mixed Berries | Berries Mixed | 500g 650, 1kg 1100 | Creative Gourmet, Nature's Finest
frozen | Chicken Nuggets | Nuggets Chicken | 400g 650, 1kg 1300 | Ingham's, Steggles, Birds Eye
produce | Bananas | Cavendish Bananas | 1kg 400 | -
produce | Carrots | Carrots Prepacked | 1kg 250, 2kg 400 | -, Perfection Fresh
produce | Brushed Potatoes | Potatoes Brushed | 2kg 450, 4kg 750 | -
produce | Iceberg Lettuce | Lettuce Iceberg | Each 300 | -
produce | Baby Spinach | Spinach Baby Leaves | 120g 300, 280g 550 | OneHarvest, Emerald
produce | Pink Lady Apples | Apples Pink Lady | 1kg 600, 1.5kg 750 | -
produce | Hass Avocado | Avocado Hass | Each 200 | -
produce | Cherry Tomatoes | Tomatoes Cherry | 250g 350, 500g 600 | -, Perfection Fresh
meat | Beef Mince | Mince Beef | 500g 750, 1kg 1400 | -, Cape Grim
meat | Chicken Breast Fillets | Chicken Breast | 500g 750, 1kg 1300 | Ingham's, Steggles, Lilydale
meat | Middle Bacon | Bacon Middle Rashers | 250g 550, 500g 950 | KR Castlemaine, Primo, D'Orsogna
meat | Leg Ham | Shaved Leg Ham | 200g 550, 500g 1100 | Primo, D'Orsogna, Don
meat | Beef Sausages | Sausages Beef BBQ | 500g 550, 1kg 950 | -, Hans
meat | Lamb Loin Chops | Lamb Chops Loin | 500g 1400 | -
meat | Pork Shoulder Roast | Pork Shoulder | 1.5kg 1500 | -
meat | Chicken Thigh Fillets | Chicken Thigh | 500g 800, 1kg 1500 | Ingham's, Steggles, Lilydale
household | Toilet Paper | Toilet Tissue | 12 pack 900, 24 pack 1600 | Quilton, Sorbent, Kleenex
household | Paper Towel | Paper Towels | 2 pack 350, 4 pack 650 | Viva, Handee, Sorbent
household | Dishwashing Liquid | Dish Liquid | 500mL 350, 1L 550 | Morning Fresh, Palmolive, Fairy
household | Laundry Liquid | Liquid Laundry Detergent | 1L 1100, 2L 1900 | Omo, Dynamo, Cold Power
household | Dishwasher Tablets | Dishwasher Tabs | 30 pack 1200, 60 pack 2200 | Finish, Fairy, Earth Choice
household | Multipurpose Spray | All Purpose Cleaner | 500mL 450 | Spray n' Wipe, Dettol, Ajax
household | Garbage Bags | Bin Liners | 20 pack 450 | Glad, Multix
household | Aluminium Foil | Foil Wrap | 30m 450 | Glad, Alfoil, Multix
"""


def _parse_kinds(table: str) -> tuple[_Kind, ...]:
    """Read the kind table above."""
    kinds = []
    for row in table.strip().splitlines():
        category, name, alias, sizes, brands = (cell.strip() for cell in row.split("|"))
        kinds.append(
            _Kind(
                category,
                name,
                alias,
                tuple(
                    (size, int(cents)) for size, cents in (item.rsplit(" ", 1) for item in sizes.split(", "))
                ),
                tuple(None if brand == "-" else brand for brand in brands.split(", ")),
            )
        )
    return tuple(kinds)


_KINDS = _parse_kinds(_KIND_TABLE)

# Variants that make sense for every kind of a category; each multiplies that category's items.
_QUALIFIERS = {
    "dairy": ("Organic", "Australian"),
    "bakery": ("Organic", "Gluten Free"),
    "pantry": ("Organic", "Australian"),
    "drinks": ("Organic", "Premium"),
    "frozen": ("Australian", "Premium"),
    "produce": ("Organic", "Australian"),
    "meat": ("Organic", "Premium"),
    "household": ("Eco", "Sensitive"),
}


@dataclass(frozen=True, slots=True)
class _ChainStyle:
    """A built-in chain and how its shop writes product names (0: brand first, 1: brand field, 2: shouty)."""

    slug: str
    name: str
    store_prefix: str
    style: int


_BUILTIN_CHAINS = (
    _ChainStyle("freshmart", "FreshMart", "fm", 0),
    _ChainStyle("valueway", "ValueWay", "vw", 1),
    _ChainStyle("greengrocer", "GreenGrocer", "gg", 2),
)
MAX_BUILTIN_CHAINS = len(_BUILTIN_CHAINS)


def builtin_chains(count: int) -> tuple[str, ...]:
    """Return the slugs of the built-in world's first `count` chains, in the world's order."""
    return tuple(style.slug for style in _BUILTIN_CHAINS[:count])


_STORE_BRAND_SHARE = 0.2
_ALIAS_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class _Item:
    """A real-world item chains may list; a store-brand item belongs to one chain."""

    kind: _Kind
    qualifier: str
    size: str
    typical_cents: int
    brand: str | None
    store_brand_of: str | None = None

    @property
    def line(self) -> tuple[str, str, str]:
        """Return what makes items interchangeable across brands: kind, qualifier and size."""
        return (self.kind.name, self.qualifier, self.size)


@dataclass(frozen=True, slots=True)
class _Listing:
    """An item listed by one chain under its sku; an alias listing uses another name and barcode."""

    chain: int
    item: _Item
    product: Product
    alias: bool


def _listing_name(
    style: int, brand: str | None, qualifier: str, kind: str, size: str
) -> tuple[str, str | None]:
    """Return the product name and brand field as a chain of this style writes them."""
    if style == 0:
        return _join(brand, qualifier, kind, size), brand
    if style == 1:
        return _join(qualifier, kind, size), brand
    *modifiers, noun = kind.split()
    return f"{_join(brand.upper() if brand else None, noun, qualifier, *modifiers)} | {size}", None


def _carriers(rng: random.Random, open_chains: list[int]) -> list[int]:
    """Pick the chains that stock a national item: half go to all, a quarter to two, the rest to one."""
    roll = rng.random()
    if roll < 0.5:
        return open_chains
    if roll < 0.75:
        return sorted(rng.sample(open_chains, min(2, len(open_chains))))
    return [rng.choice(open_chains)]


_Line = tuple[_Kind, str, str, int]
"""A product line: kind, qualifier, size and typical price in cents."""


def builtin_catalog(seed: int, chains: int, products_per_chain: int, categories: Sequence[str]) -> Catalog:
    """Generate the built-in chains' catalogs and every L1/L2/L3 equivalence between their listings."""
    known = {kind.category for kind in _KINDS}
    if unknown := sorted(set(categories) - known):
        raise ValueError(
            f"the built-in catalog has no products for categories {unknown}; known: {sorted(known)}"
        )
    if not 1 <= chains <= MAX_BUILTIN_CHAINS:
        raise ValueError(f"the built-in catalog has 1 to {MAX_BUILTIN_CHAINS} chains, not {chains}")
    styles = _BUILTIN_CHAINS[:chains]
    rng = _seeded(seed, "builtin-catalog")
    lines = [
        (kind, qualifier, size, cents)
        for kind in _KINDS
        if kind.category in categories
        for qualifier in ("", *_QUALIFIERS[kind.category])
        for size, cents in kind.sizes
    ]
    store_brand_quota = round(products_per_chain * _STORE_BRAND_SHARE)
    national_quota = products_per_chain - store_brand_quota
    carried = _carry_national_brands(rng, lines, len(styles), national_quota)
    if any(len(items) < national_quota for items in carried) or store_brand_quota > len(lines):
        raise ValueError(
            f"the built-in catalog is too small for {products_per_chain} products per chain; "
            "use a real catalog (catalog_path) for more"
        )
    _add_store_brands(rng, lines, styles, carried, store_brand_quota)
    listings = _list_items(rng, seed, styles, carried)
    return Catalog(
        chains=tuple(
            ChainCatalog(
                style.slug,
                style.name,
                style.store_prefix,
                _shelf_order([listing.product for listing in listings if listing.chain == index], categories),
            )
            for index, style in enumerate(styles)
        ),
        equivalences=_equivalences(listings, styles),
    )


def _carry_national_brands(
    rng: random.Random, lines: Sequence[_Line], chains: int, quota: int
) -> list[list[_Item]]:
    """Deal the national brands of every line, shuffled, to the chains until each carries `quota`."""
    national = [
        _Item(kind, qualifier, size, cents, brand)
        for kind, qualifier, size, cents in lines
        for brand in kind.brands
    ]
    rng.shuffle(national)
    carried: list[list[_Item]] = [[] for _ in range(chains)]
    for item in national:
        open_chains = [index for index, items in enumerate(carried) if len(items) < quota]
        if not open_chains:
            break
        for index in _carriers(rng, open_chains):
            carried[index].append(item)
    return carried


def _add_store_brands(
    rng: random.Random,
    lines: Sequence[_Line],
    styles: Sequence[_ChainStyle],
    carried: list[list[_Item]],
    quota: int,
) -> None:
    """Give each chain `quota` store-brand items, copying lines somebody stocks where it can.

    A store brand copying a stocked line has national-brand equivalents (L3).
    """
    stocked = {item.line for items in carried for item in items}
    for index, style in enumerate(styles):
        shuffled = rng.sample(lines, len(lines))
        shuffled.sort(key=lambda line: (line[0].name, line[1], line[2]) not in stocked)
        carried[index] += [
            _Item(kind, qualifier, size, cents, style.name, store_brand_of=style.slug)
            for kind, qualifier, size, cents in shuffled[:quota]
        ]


def _list_items(
    rng: random.Random, seed: int, styles: Sequence[_ChainStyle], carried: Sequence[Sequence[_Item]]
) -> list[_Listing]:
    """Give every carried item a sku, a name in its chain's style, a barcode and a base price."""
    carrier_count: dict[_Item, int] = defaultdict(int)
    for items in carried:
        for item in items:
            carrier_count[item] += 1
    barcodes: dict[_Item, str] = {}
    listings = []
    for index, (style, items) in enumerate(zip(styles, carried, strict=True)):
        skus = rng.sample(range(100_000, 1_000_000), len(items))
        for item, sku in zip(items, skus, strict=True):
            # An alias listing is the same item sold under another name with the shop's own barcode (L2).
            alias = carrier_count[item] > 1 and rng.random() < _ALIAS_SHARE
            kind_name = item.kind.alias if alias else item.kind.name
            name, brand = _listing_name(style.style, item.brand, item.qualifier, kind_name, item.size)
            if alias or item.store_brand_of:
                # "2" prefixes are in-store numbers: only this chain uses them.
                barcode = _random_ean(rng, "2")
            else:
                if item not in barcodes:
                    barcodes[item] = _random_ean(rng, "93")
                barcode = barcodes[item]
            product = Product(
                sku=str(sku),
                name=name,
                brand=brand,
                size=item.size,
                category=item.kind.category,
                barcode=barcode,
                base_cents=_base_cents(rng, seed, item),
            )
            listings.append(_Listing(index, item, product, alias))
    return listings


def _base_cents(rng: random.Random, seed: int, item: _Item) -> int:
    """Price an item near its typical price: brands keep their premium everywhere, chains differ a little."""
    if item.store_brand_of:
        brand_factor = 0.72 + 0.12 * _seeded(seed, "store-brand", item.store_brand_of).random()
    else:
        brand_factor = 0.9 + 0.3 * _seeded(seed, "brand", item.brand, item.kind.name).random()
    chain_factor = 0.94 + 0.14 * rng.random()
    return min(2999, _shelf_cents(rng, item.typical_cents * brand_factor * chain_factor))


def _equivalences(listings: Sequence[_Listing], styles: Sequence[_ChainStyle]) -> tuple[Equivalence, ...]:
    """Pair listings of one item (L1 same barcode, L2 not) and of one line with a store brand (L3)."""
    by_item: dict[_Item, list[_Listing]] = defaultdict(list)
    by_line: dict[tuple[str, str, str], list[_Listing]] = defaultdict(list)
    for listing in listings:
        by_item[listing.item].append(listing)
        by_line[listing.item.line].append(listing)
    pairs: list[tuple[EquivalenceLevel, _Listing, _Listing]] = []
    for group in by_item.values():
        for a, b in combinations(group, 2):
            pairs.append(("L2" if a.alias or b.alias else "L1", a, b))
    for group in by_line.values():
        for a, b in combinations(group, 2):
            if a.item != b.item and (a.item.store_brand_of or b.item.store_brand_of):
                pairs.append(("L3", a, b))
    equivalences = []
    for level, a, b in pairs:
        first, second = sorted((a, b), key=lambda listing: (listing.chain, listing.product.sku))
        chain_a, chain_b = styles[first.chain].slug, styles[second.chain].slug
        equivalences.append(Equivalence(level, chain_a, first.product.sku, chain_b, second.product.sku))
    return tuple(sorted(equivalences, key=lambda e: (e.level, e.chain_a, e.sku_a, e.chain_b, e.sku_b)))


def _shelf_order(products: Sequence[Product], categories: Sequence[str]) -> tuple[Product, ...]:
    """Sort products the way the shop shows them: by category, then name."""
    rank = {slug: position for position, slug in enumerate(categories)}
    return tuple(sorted(products, key=lambda product: (rank[product.category], product.name, product.sku)))


# --- real names: the au-grocery-2023 scrape ------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuRow:
    """One row of an au-grocery-2023 file: price in dollars, quantity in kg, litres or units."""

    name: str
    url: str
    price: float
    quantity: float


@dataclass(frozen=True, slots=True)
class _AuChain:
    """A chain of the au-grocery-2023 folder and how its urls carry the sku."""

    slug: str
    name: str
    store_prefix: str
    sku_is_trailing_number: bool


_AU_CHAINS = (
    _AuChain("coles", "Coles", "co", True),
    _AuChain("woolworths", "Woolworths", "ww", True),
    _AuChain("iga", "IGA", "iga", True),
    # ALDI urls end in a slug, which may itself end in digits ("...-250g-2"): the slug is the sku.
    _AuChain("aldi", "ALDI", "al", False),
)

# Keywords that start a word of the name; the first category that matches wins, so the order
# settles names like "Chicken Simmer Sauce" (pantry, not meat) and "Milk Chocolate" (pantry, not dairy).
_CATEGORY_RULES = (
    ("frozen", "frozen|ice cream|gelato|sorbet|ice block"),
    (
        "household",
        "toilet|tissue|paper towel|detergent|laundry|dishwash|cleaner|bleach|wipes|garbage|bin liner|foil"
        "|cling wrap|shampoo|conditioner|toothpaste|soap|body wash|deodorant|nappies|sponge",
    ),
    (
        "pantry",
        "sauce|noodle|soup|stock|seasoning|spice|paste|chocolate|biscuit|cracker|chips|cereal|muesli|oats"
        "|pasta|spaghetti|rice|flour|sugar|honey|jam|spread|vinegar|oil|tuna|beans|lentils",
    ),
    ("meat", "beef|chicken|lamb|pork|mince|sausage|bacon|ham|steak|salami|turkey|fish|salmon|prawn"),
    (
        "produce",
        "apple|banana|orange|lemon|avocado|tomato|potato|carrot|onion|lettuce|spinach|broccoli|cucumber"
        "|capsicum|mushroom|berries|grapes|salad|pumpkin|zucchini|fruit",
    ),
    ("bakery", "bread|loaf|roll|bun|muffin|crumpet|wrap|bagel|croissant|cake|tortilla"),
    (
        "dairy",
        "milk|cheese|cheddar|brie|fetta|feta|parmesan|mozzarella|yoghurt|yogurt|butter|cream|eggs|custard|dip",
    ),
    ("drinks", "juice|water|soft drink|cola|lemonade|cordial|coffee|tea|kombucha|drink|soda"),
)
_CATEGORY_PATTERNS = tuple(
    (slug, re.compile(rf"\b(?:{keywords})", re.IGNORECASE)) for slug, keywords in _CATEGORY_RULES
)
_FALLBACK_CATEGORY = "pantry"

_SLUG_UNITS = {"g": "g", "kg": "kg", "ml": "mL", "l": "L"}
_SLUG_AMOUNT = re.compile(r"(?:^|-)(?:(\d+)-(x|pack)-)?(\d+(?:\.\d+)?)(g|kg|ml|l)$")
_SLUG_PACK = re.compile(r"(?:^|-)(\d+)-pack$")
_LIQUID = re.compile(
    r"\b(?:milk|juice|water|drink|soda|cola|lemonade|oil|vinegar|cordial|liquid|detergent|shampoo|conditioner"
    r"|wash|kombucha)\b",
    re.IGNORECASE,
)


def read_au_grocery(folder: Path) -> dict[str, list[AuRow]]:
    """Read the product rows of each chain file present in an au-grocery-2023 folder."""
    rows = {}
    for chain in _AU_CHAINS:
        path = folder / f"{chain.slug}.json"
        if path.exists():
            info = json.loads(path.read_text(encoding="utf-8"))["productInfo"]
            rows[chain.slug] = [
                AuRow(str(row["name"]), str(row["url"]), float(row["price"]), float(row["quantity"]))
                for row in info
            ]
    return rows


def au_grocery_catalog(
    rows: Mapping[str, Sequence[AuRow]], seed: int, products_per_chain: int, categories: Sequence[str]
) -> Catalog:
    """Build catalogs from real product rows: first row per sku, at most products_per_chain picked by seed.

    Where a chain has more, half of its pick (at most) are products another chain sells too under
    the same words (`_au_key`), the same ones at every chain, so that the world shows a product
    across chains; a pick at random would hold almost none of the few hundred chains share.
    """
    unique: dict[str, dict[str, AuRow]] = {}
    for chain in _AU_CHAINS:
        for row in rows.get(chain.slug, ()):
            unique.setdefault(chain.slug, {}).setdefault(_au_sku(chain, row.url), row)
    if not unique:
        raise ValueError(
            "no chain files (coles.json, woolworths.json, iga.json, aldi.json) in the catalog folder"
        )
    keys = {
        chain.slug: {sku: _au_key(chain, sku, row) for sku, row in unique[chain.slug].items()}
        for chain in _AU_CHAINS
        if chain.slug in unique
    }
    shared = _shared_keys(keys)
    chains = []
    for chain in _AU_CHAINS:
        if chain.slug not in unique:
            continue
        by_sku = unique[chain.slug]
        skus = sorted(by_sku)
        if len(skus) > products_per_chain:
            keyed = {keys[chain.slug][sku]: sku for sku in reversed(skus)}  # the first sku of a key
            wanted = _seeded(seed, "au-shared").sample(shared, len(shared))
            common = [keyed[key] for key in wanted if key in keyed][: products_per_chain // 2]
            rest = sorted(set(skus) - set(common))
            skus = sorted(
                common + _seeded(seed, "au-pick", chain.slug).sample(rest, products_per_chain - len(common))
            )
        products = [_au_product(chain, sku, by_sku[sku], categories) for sku in skus]
        chains.append(
            ChainCatalog(chain.slug, chain.name, chain.store_prefix, _shelf_order(products, categories))
        )
    return Catalog(chains=tuple(chains), equivalences=())


def _shared_keys(keys: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Return the keys (each chain's by sku) of products more than one chain sells, sorted."""
    chains_of: dict[str, set[str]] = {}
    for chain, by_sku in keys.items():
        for key in by_sku.values():
            chains_of.setdefault(key, set()).add(chain)
    return sorted(key for key, held in chains_of.items() if len(held) > 1)


def _au_key(chain: _AuChain, sku: str, row: AuRow) -> str:
    """Return a product's words with its brand's, as a set: Saxa's "Table Salt" = "Saxa Table Salt"."""
    words = {_letters(word) for word in f"{_au_brand(chain, sku, row) or ''} {row.name}".split()}
    return " ".join(sorted(words - {""}))


def _au_brand(chain: _AuChain, sku: str, row: AuRow) -> str | None:
    """Return the brand a product's url slug puts before its name, if any."""
    return _brand_from_slug(_slug_words(chain, sku, row), row.name.strip())


def _slug_words(chain: _AuChain, sku: str, row: AuRow) -> str:
    """Return a product url's slug without the sku that may end it."""
    slug = _url_slug(row.url)
    return slug.removesuffix(sku).strip("-") if chain.sku_is_trailing_number else slug


def _url_slug(url: str) -> str:
    """Return the last path segment of a url."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _au_sku(chain: _AuChain, url: str) -> str:
    """Return the chain's product id from a product url."""
    slug = _url_slug(url)
    if chain.sku_is_trailing_number:
        number = re.search(r"(\d+)$", slug)
        if number:
            return number.group(1)
    return slug[:64]


def _au_product(chain: _AuChain, sku: str, row: AuRow, categories: Sequence[str]) -> Product:
    """Describe one real product; the scrape names no barcode, so it has none."""
    words = _slug_words(chain, sku, row)
    name = row.name.strip()
    return Product(
        sku=sku,
        name=name,
        brand=_brand_from_slug(words, name),
        size=_size_from_slug(words) or _size_from_quantity(name, row.quantity),
        category=_au_category(name, categories),
        barcode=None,
        base_cents=max(1, round(row.price * 100)),
    )


def _au_category(name: str, categories: Sequence[str]) -> str:
    """Return the first category whose keywords the name contains."""
    for slug, pattern in _CATEGORY_PATTERNS:
        if slug in categories and pattern.search(name):
            return slug
    return _FALLBACK_CATEGORY if _FALLBACK_CATEGORY in categories else categories[0]


def _brand_from_slug(slug: str, name: str) -> str | None:
    """Return the words a url slug puts before the product name: the brand Coles leaves out of names."""
    slug_words = [word for word in slug.split("-") if _letters(word)]
    name_words = [_letters(word) for word in name.split() if _letters(word)]
    keys = [_letters(word) for word in slug_words]
    for start in range(len(keys) - len(name_words) + 1):
        if name_words and keys[start : start + len(name_words)] == name_words:
            return " ".join(word[:1].upper() + word[1:] for word in slug_words[:start]) or None
    return None


def _letters(word: str) -> str:
    """Return a word lower-cased with everything but letters and digits removed."""
    return re.sub(r"[^a-z0-9]", "", word.lower())


def _size_from_slug(slug: str) -> str | None:
    """Return the size a url slug ends with ("...-24-pack", "...-500g", "...-10-pack-375ml"), if any."""
    if amount := _SLUG_AMOUNT.search(slug):
        count, separator, number, unit = amount.groups()
        size = f"{number}{_SLUG_UNITS[unit]}"
        return f"{count} {separator} {size}" if count else size
    if pack := _SLUG_PACK.search(slug):
        return f"{pack.group(1)} pack"
    if slug.endswith("-each"):
        return "Each"
    return None


def _size_from_quantity(name: str, quantity: float) -> str:
    """Guess a size from the scrape's bare quantity: litres for liquids, kilograms otherwise."""
    if quantity <= 0:
        return "Each"
    small, large = ("mL", "L") if _LIQUID.search(name) else ("g", "kg")
    if quantity < 1:
        return f"{round(quantity * 1000):g}{small}"
    return f"{quantity:g}{large}"
