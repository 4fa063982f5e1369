"""The storefront's world: chains, stores, pricing zones, catalogs and prices, all pure functions of a seed.

A price is fixed by (seed, chain, zone, sku, day), so any process rebuilds the same world and the
same prices, and the ground truth (zones, specials, equivalences) is known exactly:

- each chain sets a base regular price per product; some drift a little every 28 days;
- each pricing zone multiplies the regular price by its own factor, the same in all its stores;
- a chain may re-zone a few stores on a given day ("zone moves", off unless configured): from that
  day on a moved store charges its new zone's prices, so a store's zone is a function of the day;
- a few (store, product) pairs deviate from their zone by 10-60 cents, every day ("exceptions");
- each week some zone x product pairs are on special: a true special cuts 15-40% off the regular
  price; an illusory one raises the shelf price ~25% for the 5 days before, then "discounts" it
  back to about the old regular price and shows the raised price as the was-price;
- in a zone's quiet weeks (no special, no raised price) some products carry an offer instead: a
  multi-buy ("2 for $5") or a price for loyalty members only; the shelf price stays as it is;
- loose produce and meat without a brand, sized 1kg, is sold by weight: its price is per kilogram.
"""

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

from simulator.catalog import (
    DEFAULT_CATEGORIES,
    Catalog,
    ChainCatalog,
    Equivalence,
    Product,
    au_grocery_catalog,
    builtin_catalog,
    category_name,
    read_au_grocery,
)

SpecialKind = Literal["true", "illusory"]
OfferKind = Literal["multibuy", "member"]
SoldBy = Literal["each", "kg"]

DRIFT_PERIOD_DAYS = 28
DRIFT_SHARE = 0.25
ZONE_FACTOR_RANGE = (0.95, 1.10)
TRUE_CUT_RANGE = (0.15, 0.40)
INFLATION_RANGE = (1.22, 1.28)
PRE_INFLATION_DAYS = 5
ILLUSORY_CUT_MAX = 0.03
EXCEPTION_CENTS_RANGE = (10, 60)
ZONE_PRICE_CACHE = 1 << 18
MULTIBUY_CUT_RANGE = (0.10, 0.25)
MEMBER_CUT_RANGE = (0.08, 0.20)
WEIGHED_CATEGORIES = frozenset({"produce", "meat"})

# (suburb, state, postcode) the stores are spread over.
_SUBURBS = (
    ("Parramatta", "NSW", "2150"),
    ("Bondi Junction", "NSW", "2022"),
    ("Chatswood", "NSW", "2067"),
    ("Penrith", "NSW", "2750"),
    ("Newcastle", "NSW", "2300"),
    ("Wollongong", "NSW", "2500"),
    ("Dubbo", "NSW", "2830"),
    ("Richmond", "VIC", "3121"),
    ("Box Hill", "VIC", "3128"),
    ("Footscray", "VIC", "3011"),
    ("Geelong", "VIC", "3220"),
    ("Ballarat", "VIC", "3350"),
    ("Frankston", "VIC", "3199"),
    ("Chermside", "QLD", "4032"),
    ("Southport", "QLD", "4215"),
    ("Toowoomba", "QLD", "4350"),
    ("Cairns", "QLD", "4870"),
    ("Townsville", "QLD", "4810"),
    ("Fremantle", "WA", "6160"),
    ("Joondalup", "WA", "6027"),
    ("Bunbury", "WA", "6230"),
    ("Glenelg", "SA", "5045"),
    ("Elizabeth", "SA", "5112"),
    ("Mount Gambier", "SA", "5290"),
    ("Hobart", "TAS", "7000"),
    ("Launceston", "TAS", "7250"),
    ("Belconnen", "ACT", "2617"),
    ("Tuggeranong", "ACT", "2900"),
    ("Darwin", "NT", "0800"),
    ("Alice Springs", "NT", "0870"),
)


def draw(seed: int, *parts: object) -> float:
    """Return a number in [0, 1) fixed by the seed and the parts, the same in every process."""
    message = "|".join(str(part) for part in parts).encode()
    digest = hashlib.blake2b(message, digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") / 2**64


class NotFoundError(LookupError):
    """Raised when a chain, store, category, page or product does not exist."""


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Everything that shapes a world; the same config always builds the same world."""

    seed: int = 7
    chains: int = 3
    stores_per_chain: int = 30
    zones_per_chain: int = 4
    products_per_chain: int = 240
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    page_size: int = 24
    # Two stores of a zone differ on both stores' exceptions. Grouping asks 98% equal
    # prices; on 240 products that allows 4 differences, so a share of 0.2% (about one
    # exception per store) keeps zones together while leaving exceptions to find.
    exception_share: float = 0.002
    out_of_stock_share: float = 0.01
    special_share: float = 0.10
    illusory_share: float = 0.3
    multibuy_share: float = 0.03
    member_share: float = 0.03
    catalog_path: Path | None = None
    # A chain re-zones this many of its stores (0: zones never change); each moved store charges its
    # new zone's prices from zone_move_day on. Day 3 leaves the first weekly member checks (day 7 on)
    # to see the move within a 16-day story.
    zone_moves_per_chain: int = 0
    zone_move_day: int = 3

    def __post_init__(self) -> None:
        """Reject a config that cannot build a sensible world."""
        if not 1 <= self.zones_per_chain <= self.stores_per_chain:
            raise ValueError("need 1 <= zones_per_chain <= stores_per_chain")
        if self.products_per_chain < 1 or self.page_size < 1:
            raise ValueError("products_per_chain and page_size must be at least 1")
        if not self.categories or len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be a non-empty list of distinct slugs")
        shares = (
            self.exception_share,
            self.out_of_stock_share,
            self.special_share,
            self.illusory_share,
            self.multibuy_share,
            self.member_share,
        )
        if not all(0.0 <= share <= 1.0 for share in shares):
            raise ValueError("every share must be between 0 and 1")
        if self.multibuy_share + self.member_share > 1.0:
            raise ValueError("multibuy_share and member_share together must be at most 1")
        if self.zone_moves_per_chain < 0 or self.zone_move_day < 1:
            raise ValueError("need zone_moves_per_chain >= 0 and zone_move_day >= 1")
        if self.zone_moves_per_chain and self.zones_per_chain < 2:
            raise ValueError("zone moves need zones_per_chain >= 2")


@dataclass(frozen=True, slots=True)
class Chain:
    """A supermarket chain."""

    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class Store:
    """A chain's store, as its shop lists it."""

    id: str
    name: str
    state: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Category:
    """A category of a chain's shop and how many pages of products it has."""

    slug: str
    name: str
    products: int
    pages: int


@dataclass(frozen=True, slots=True)
class Listing:
    """A product on a category page, with what one store charges on one day."""

    sku: str
    name: str
    brand: str | None
    size: str
    price_cents: int
    was_price_cents: int | None
    available: bool


class ShelfPrice(NamedTuple):
    """What a store charges for a product on a day."""

    price_cents: int
    was_price_cents: int | None
    available: bool


@dataclass(frozen=True, slots=True)
class Special:
    """A zone x product on special on a day (ground truth), with the regular price it really has."""

    chain: str
    zone: str
    sku: str
    kind: SpecialKind
    price_cents: int
    was_price_cents: int
    regular_cents: int


@dataclass(frozen=True, slots=True)
class Offer:
    """A zone x product's offer beside its shelf price (ground truth): a multi-buy or a member price."""

    chain: str
    zone: str
    sku: str
    kind: OfferKind
    quantity: int | None
    """How many items the multi-buy asks for; None for a member price."""
    total_cents: int
    """What the multi-buy's items cost together, or the member price of one."""


@dataclass(frozen=True, slots=True)
class ZoneMove:
    """A store its chain re-zones (ground truth): it charges `to_zone`'s prices from `day` on."""

    chain: str
    store_id: str
    from_zone: str
    to_zone: str
    day: int


class _ZonePrice(NamedTuple):
    """What every store of a zone charges for a product on a day, before store exceptions."""

    price_cents: int
    was_price_cents: int | None
    regular_cents: int
    special: SpecialKind | None


@dataclass(frozen=True, slots=True)
class _ChainWorld:
    """Everything about one chain that is fixed at build time."""

    chain: Chain
    stores: tuple[Store, ...]
    store_zone: dict[str, str]
    """Each store's zone before any move."""
    moves: dict[str, ZoneMove]
    """The moved stores' moves, by store id."""
    zone_factor: dict[str, float]
    products: tuple[Product, ...]
    by_sku: dict[str, Product]
    shelves: dict[str, tuple[Product, ...]]
    categories: tuple[Category, ...]
    deviations: dict[tuple[str, str], int]


class World:
    """A seeded world of chains whose every price is a pure function of (seed, chain, zone, sku, day)."""

    def __init__(self, config: WorldConfig, catalog: Catalog) -> None:
        """Lay out stores, zones, shelves and exceptions for the catalog's chains."""
        self.config = config
        self._catalog = catalog
        self._chains = {chain.slug: _build_chain(config, chain) for chain in catalog.chains}
        self._equivalences = catalog.equivalences
        # Scrapers ask for the same zone x product x day from every store of a zone: compute it once.
        self._zone_price = lru_cache(maxsize=ZONE_PRICE_CACHE)(self._compute_zone_price)

    @classmethod
    def build(cls, config: WorldConfig) -> "World":
        """Build the world a config describes, with real product names when it names a catalog folder."""
        if config.catalog_path is None:
            catalog = builtin_catalog(
                config.seed, config.chains, config.products_per_chain, config.categories
            )
        else:
            rows = read_au_grocery(config.catalog_path)
            catalog = au_grocery_catalog(rows, config.seed, config.products_per_chain, config.categories)
        return cls(config, catalog)

    def with_zone_moves(self, per_chain: int, day: int) -> "World":
        """Return this world with another set of zone moves; everything else (catalog included) stays."""
        return World(replace(self.config, zone_moves_per_chain=per_chain, zone_move_day=day), self._catalog)

    # --- what the shops show ---------------------------------------------------------------

    @property
    def chains(self) -> tuple[Chain, ...]:
        """Return every chain, in a stable order."""
        return tuple(world.chain for world in self._chains.values())

    def stores(self, chain: str) -> tuple[Store, ...]:
        """Return a chain's stores, ordered by id."""
        return self._chain(chain).stores

    def categories(self, chain: str) -> tuple[Category, ...]:
        """Return a chain's categories that have products."""
        return self._chain(chain).categories

    def category(self, chain: str, slug: str) -> Category:
        """Return one of a chain's categories."""
        for category in self._chain(chain).categories:
            if category.slug == slug:
                return category
        raise NotFoundError(f"chain {chain!r} has no category {slug!r}")

    def products(self, chain: str) -> tuple[Product, ...]:
        """Return every product of a chain, in shelf order."""
        return self._chain(chain).products

    def product(self, chain: str, sku: str) -> Product:
        """Return one product of a chain."""
        product = self._chain(chain).by_sku.get(sku)
        if product is None:
            raise NotFoundError(f"chain {chain!r} has no product {sku!r}")
        return product

    def page(self, chain: str, store_id: str, category: str, page: int, day: int) -> list[Listing]:
        """Return one page of a category as a store shows it on a day; pages count from 1."""
        pages = self.category(chain, category).pages
        if not 1 <= page <= pages:
            raise NotFoundError(f"category {category!r} has pages 1 to {pages}, not {page}")
        size = self.config.page_size
        return self.listings(chain, store_id, category, day, (page - 1) * size, page * size)

    def listings(
        self, chain: str, store_id: str, category: str, day: int, start: int, stop: int
    ) -> list[Listing]:
        """Return the listings from `start` to `stop` of a category's shelf as a store shows them on a day."""
        world = self._chain(chain)
        zone = self.zone_of(chain, store_id, day)
        self.category(chain, category)  # an unknown category is NotFoundError
        return [
            Listing(
                product.sku,
                product.name,
                product.brand,
                product.size,
                *self._store_price(world, zone, store_id, product.sku, day),
            )
            for product in world.shelves[category][start:stop]
        ]

    def price(self, chain: str, store_id: str, sku: str, day: int) -> ShelfPrice:
        """Return what a store charges for a product on a day."""
        world = self._chain(chain)
        zone = self.zone_of(chain, store_id, day)
        self.product(chain, sku)  # an unknown sku is NotFoundError, not a KeyError deep in pricing
        return self._store_price(world, zone, store_id, sku, day)

    def sold_by(self, chain: str, sku: str) -> SoldBy:
        """Return how a product is sold: by weight ("kg", its price per kilogram) or each."""
        product = self.product(chain, sku)
        weighed = product.category in WEIGHED_CATEGORIES and product.brand is None
        return "kg" if weighed and product.size.lower() == "1kg" else "each"

    def offer(self, chain: str, store_id: str, sku: str, day: int) -> Offer | None:
        """Return the offer a store shows beside a product's shelf price on a day, if any."""
        world = self._chain(chain)
        zone = self.zone_of(chain, store_id, day)
        offer = self._zone_offer(chain, zone, sku, day)
        if offer is None:
            return None
        # A store's exception may leave the offer no cheaper than the shelf: then the store drops it.
        price = self._store_price(world, zone, store_id, sku, day).price_cents
        each = offer.total_cents / (offer.quantity or 1)
        return offer if each < price else None

    # --- ground truth ------------------------------------------------------------------------

    def zone_of(self, chain: str, store_id: str, day: int = 0) -> str:
        """Return the pricing zone of a store on a day (day 0 unless given)."""
        world = self._chain(chain)
        zone = world.store_zone.get(store_id)
        if zone is None:
            raise NotFoundError(f"chain {chain!r} has no store {store_id!r}")
        move = world.moves.get(store_id)
        return move.to_zone if move is not None and day >= move.day else zone

    def zones(self, chain: str, day: int = 0) -> dict[str, tuple[str, ...]]:
        """Return each pricing zone of a chain with its store ids on a day (day 0 unless given)."""
        members: dict[str, list[str]] = {zone: [] for zone in self._chain(chain).zone_factor}
        for store_id in self._chain(chain).store_zone:
            members[self.zone_of(chain, store_id, day)].append(store_id)
        return {zone: tuple(store_ids) for zone, store_ids in members.items()}

    def zone_moves(self, chain: str | None = None) -> tuple[ZoneMove, ...]:
        """Return the stores re-zoned in one chain (every chain unless given), ordered by chain and store."""
        worlds = self._chains.values() if chain is None else (self._chain(chain),)
        return tuple(move for world in worlds for move in world.moves.values())

    def exceptions(self, chain: str) -> dict[tuple[str, str], int]:
        """Return the (store id, sku) pairs that deviate from their zone, with the deviation in cents."""
        return dict(self._chain(chain).deviations)

    def specials(self, day: int) -> list[Special]:
        """Return every zone x product on special on a day, true and illusory."""
        specials = []
        for slug, world in self._chains.items():
            for zone in world.zone_factor:
                for sku in world.by_sku:
                    price = self._zone_price(slug, zone, sku, day)
                    if price.special is None or price.was_price_cents is None:
                        continue
                    specials.append(
                        Special(
                            slug,
                            zone,
                            sku,
                            price.special,
                            price.price_cents,
                            price.was_price_cents,
                            price.regular_cents,
                        )
                    )
        return specials

    def offers(self, day: int) -> list[Offer]:
        """Return every zone x product offer (multi-buy or member price) on a day."""
        return [
            offer
            for slug, world in self._chains.items()
            for zone in world.zone_factor
            for sku in world.by_sku
            if (offer := self._zone_offer(slug, zone, sku, day)) is not None
        ]

    def equivalences(self) -> tuple[Equivalence, ...]:
        """Return every known pair of equivalent listings (L1 same barcode, L2 renamed, L3 store brand)."""
        return self._equivalences

    # --- pricing -----------------------------------------------------------------------------

    def _chain(self, chain: str) -> _ChainWorld:
        """Return a chain's world, or raise NotFoundError."""
        world = self._chains.get(chain)
        if world is None:
            raise NotFoundError(f"no chain {chain!r}")
        return world

    def _store_price(self, world: _ChainWorld, zone: str, store_id: str, sku: str, day: int) -> ShelfPrice:
        """Return the zone's price for a store, with the store's exception and stock applied."""
        zone_price = self._zone_price(world.chain.slug, zone, sku, day)
        price = max(1, zone_price.price_cents + world.deviations.get((store_id, sku), 0))
        available = draw(self.config.seed, "stock", world.chain.slug, store_id, sku, day) >= (
            self.config.out_of_stock_share
        )
        return ShelfPrice(price, zone_price.was_price_cents, available)

    def _compute_zone_price(self, chain: str, zone: str, sku: str, day: int) -> _ZonePrice:
        """Price a product in a zone on a day: regular, special, or inflated ahead of an illusory special."""
        if day < 0:
            raise ValueError(f"days count from 0, not {day}")
        seed = self.config.seed
        regular = self._zone_regular(chain, zone, sku, day)
        week, weekday = divmod(day, 7)
        special = self._special(chain, zone, sku, week)
        if special == "true":
            low, high = TRUE_CUT_RANGE
            cut = low + (high - low) * draw(seed, "cut", chain, zone, sku, week)
            return _ZonePrice(max(1, math.floor(regular * (1 - cut))), regular, regular, special)
        if special == "illusory":
            old_regular = self._zone_regular(chain, zone, sku, week * 7 - 1)
            cut = ILLUSORY_CUT_MAX * draw(seed, "cut", chain, zone, sku, week)
            price = max(1, math.floor(old_regular * (1 - cut)))
            return _ZonePrice(price, self._inflated(chain, zone, sku, week), regular, special)
        if weekday >= 7 - PRE_INFLATION_DAYS and self._special(chain, zone, sku, week + 1) == "illusory":
            return _ZonePrice(self._inflated(chain, zone, sku, week + 1), None, regular, None)
        return _ZonePrice(regular, None, regular, None)

    def _zone_offer(self, chain: str, zone: str, sku: str, day: int) -> Offer | None:
        """Return a zone x product's offer on a day: only in a quiet week, never beside a special."""
        price = self._zone_price(chain, zone, sku, day)
        if price.special is not None or price.price_cents != price.regular_cents:
            return None
        seed, config = self.config.seed, self.config
        week = day // 7
        roll = draw(seed, "offer", chain, zone, sku, week)
        if roll < config.multibuy_share:
            quantity = 3 if draw(seed, "multibuy-quantity", chain, zone, sku, week) < 0.3 else 2
            low, high = MULTIBUY_CUT_RANGE
            cut = low + (high - low) * draw(seed, "multibuy-cut", chain, zone, sku, week)
            # Shelves show round offers: "2 for $5.00", "3 for $10.50".
            total = max(10, math.floor(quantity * price.regular_cents * (1 - cut) / 10) * 10)
            return Offer(chain, zone, sku, "multibuy", quantity, total)
        if roll < config.multibuy_share + config.member_share:
            low, high = MEMBER_CUT_RANGE
            cut = low + (high - low) * draw(seed, "member-cut", chain, zone, sku, week)
            return Offer(
                chain, zone, sku, "member", None, max(1, math.floor(price.regular_cents * (1 - cut)))
            )
        return None

    def _zone_regular(self, chain: str, zone: str, sku: str, day: int) -> int:
        """Return a zone's regular price on a day: the chain's regular price times the zone's factor."""
        world = self._chains[chain]
        return max(1, round(self._chain_regular(world, sku, day) * world.zone_factor[zone]))

    def _chain_regular(self, world: _ChainWorld, sku: str, day: int) -> int:
        """Return the chain's regular price on a day: the base price after every 28-day drift so far."""
        seed, slug = self.config.seed, world.chain.slug
        cents = world.by_sku[sku].base_cents
        for period in range(1, day // DRIFT_PERIOD_DAYS + 1):
            if draw(seed, "drift", slug, sku, period) < DRIFT_SHARE:
                # Mostly up, like grocery inflation: -3% to +6%.
                change = -0.03 + 0.09 * draw(seed, "drift-size", slug, sku, period)
                cents = max(1, round(cents * (1 + change)))
        return cents

    def _inflated(self, chain: str, zone: str, sku: str, week: int) -> int:
        """Return the raised shelf price shown before an illusory special of a week, then as its was-price."""
        low, high = INFLATION_RANGE
        factor = low + (high - low) * draw(self.config.seed, "inflate", chain, zone, sku, week)
        return round(self._zone_regular(chain, zone, sku, week * 7 - 1) * factor)

    def _special(self, chain: str, zone: str, sku: str, week: int) -> SpecialKind | None:
        """Return the kind of special a zone x product runs in a week, if any."""
        special = self._drawn_special(chain, zone, sku, week)
        # A fake discount needs a quiet week before it to raise the shelf price in; without one it is real.
        if special == "illusory" and (
            week == 0 or self._drawn_special(chain, zone, sku, week - 1) is not None
        ):
            return "true"
        return special

    def _drawn_special(self, chain: str, zone: str, sku: str, week: int) -> SpecialKind | None:
        """Return the special a zone x product draws for a week, before checking the week before it."""
        seed = self.config.seed
        if draw(seed, "special", chain, zone, sku, week) >= self.config.special_share:
            return None
        return (
            "illusory"
            if draw(seed, "illusory", chain, zone, sku, week) < self.config.illusory_share
            else "true"
        )


def _build_chain(config: WorldConfig, catalog: ChainCatalog) -> _ChainWorld:
    """Lay out one chain: stores, zones, shelves by category, and the stores' exceptions."""
    stores = _stores(config.seed, catalog, config.stores_per_chain)
    store_zone, zone_factor = _zones(config.seed, catalog, stores, config.zones_per_chain)
    moves = _moves(config, catalog, store_zone, list(zone_factor))
    shelves = {
        slug: shelf
        for slug in config.categories
        if (shelf := tuple(product for product in catalog.products if product.category == slug))
    }
    categories = tuple(
        Category(slug, category_name(slug), len(shelf), math.ceil(len(shelf) / config.page_size))
        for slug, shelf in shelves.items()
    )
    return _ChainWorld(
        chain=Chain(catalog.slug, catalog.name),
        stores=stores,
        store_zone=store_zone,
        moves=moves,
        zone_factor=zone_factor,
        products=catalog.products,
        by_sku={product.sku: product for product in catalog.products},
        shelves=shelves,
        categories=categories,
        deviations=_deviations(config, catalog, stores),
    )


def _stores(seed: int, catalog: ChainCatalog, count: int) -> tuple[Store, ...]:
    """Open a chain's stores in suburbs across Australia, named like "FreshMart Parramatta 2"."""
    rng = random.Random(f"{seed}/stores/{catalog.slug}")
    opened: Counter[str] = Counter()
    stores = []
    for number in range(1, count + 1):
        suburb, state, postcode = rng.choice(_SUBURBS)
        opened[suburb] += 1
        suffix = f" {opened[suburb]}" if opened[suburb] > 1 else ""
        stores.append(
            Store(f"{catalog.store_prefix}-{number:03d}", f"{catalog.name} {suburb}{suffix}", state, postcode)
        )
    return tuple(stores)


def _zones(
    seed: int, catalog: ChainCatalog, stores: tuple[Store, ...], count: int
) -> tuple[dict[str, str], dict[str, float]]:
    """Split a chain's stores into pricing zones of unequal sizes, each with its own price factor."""
    rng = random.Random(f"{seed}/zones/{catalog.slug}")
    zone_ids = [f"{catalog.store_prefix}-z{number}" for number in range(1, count + 1)]
    low, high = ZONE_FACTOR_RANGE
    # Evenly spaced factors, so that no two zones price alike.
    factors = [low + (high - low) * index / (count - 1) for index in range(count)] if count > 1 else [1.0]
    rng.shuffle(factors)
    # The k-th zone weighs count - k: a big metro zone down to a small remote one.
    weights = [float(count - index) for index in range(count)]
    sizes = _split(len(stores), weights)
    shuffled = rng.sample([store.id for store in stores], len(stores))
    store_zone = {}
    start = 0
    for zone_id, size in zip(zone_ids, sizes, strict=True):
        store_zone.update(dict.fromkeys(shuffled[start : start + size], zone_id))
        start += size
    return dict(sorted(store_zone.items())), dict(zip(zone_ids, factors, strict=True))


def _moves(
    config: WorldConfig, catalog: ChainCatalog, store_zone: dict[str, str], zone_ids: list[str]
) -> dict[str, ZoneMove]:
    """Pick the stores a chain re-zones on the move day, each to another zone drawn at random."""
    count = config.zone_moves_per_chain
    if not count:
        return {}
    rng = random.Random(f"{config.seed}/moves/{catalog.slug}")
    left = Counter(store_zone.values())
    moves: dict[str, ZoneMove] = {}
    for store_id in rng.sample(sorted(store_zone), len(store_zone)):
        if len(moves) == count:
            break
        zone = store_zone[store_id]
        # A zone keeps at least two of its stores, so it stays a group worth finding after the moves.
        if left[zone] <= 2:
            continue
        left[zone] -= 1
        to_zone = rng.choice([other for other in zone_ids if other != zone])
        moves[store_id] = ZoneMove(catalog.slug, store_id, zone, to_zone, config.zone_move_day)
    if len(moves) < count:
        raise ValueError(
            f"chain {catalog.slug!r} can move {len(moves)} stores, not {count}, while every zone keeps two"
        )
    return dict(sorted(moves.items()))


def _split(total: int, weights: list[float]) -> list[int]:
    """Split a total into one part per weight, each at least 1, in proportion to the weights."""
    spare = total - len(weights)
    shares = [spare * weight / sum(weights) for weight in weights]
    sizes = [1 + math.floor(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda index: shares[index] - math.floor(shares[index]))
    leftover = total - sum(sizes)
    for index in by_remainder[len(by_remainder) - leftover :]:
        sizes[index] += 1
    return sizes


def _deviations(
    config: WorldConfig, catalog: ChainCatalog, stores: tuple[Store, ...]
) -> dict[tuple[str, str], int]:
    """Pick the (store, sku) pairs that charge their zone's price plus or minus 10-60 cents."""
    seed, slug = config.seed, catalog.slug
    low, high = EXCEPTION_CENTS_RANGE
    deviations = {}
    for store in stores:
        for product in catalog.products:
            if draw(seed, "exception", slug, store.id, product.sku) < config.exception_share:
                cents = low + math.floor(
                    (high - low + 1) * draw(seed, "deviation", slug, store.id, product.sku)
                )
                sign = 1 if draw(seed, "deviation-sign", slug, store.id, product.sku) < 0.5 else -1
                deviations[(store.id, product.sku)] = sign * cents
    return deviations
