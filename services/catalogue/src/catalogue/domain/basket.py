"""Price a basket at the shopper's stores and find the cheapest way to buy it across at most N stores.

Public function: `compare_basket(lines, stores, *, max_stores) -> BasketComparison`.

The split is exact, not greedy: every subset of the stores with 1 to N members is tried, and
within a subset each line goes to its cheapest store there (with no cost per store visited,
that assignment is optimal for the subset). A subset where some line is sold at none of its
stores is incomplete. Subsets are ranked by: complete first, then fewest lines missing, then
lowest total, then fewest stores used, then the stores' order as the shopper gave them, so
equal answers always come out the same. A line's cost at a store counts the store's multi-buy
offer ("3 for $5"): as many whole sets of the quantity as fit at the offer's total, the rest at
the price of one; an offer dearer than its units bought one by one is never taken.
There are at most sum(C(S, k), k <= N) subsets; `MAX_SUBSETS` bounds them so a request cannot
ask for an unbounded search.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

# With 20 stores and N = 4 there are 6,195 subsets; a bound well above that keeps requests cheap.
MAX_SUBSETS = 50_000


@dataclass(frozen=True, slots=True)
class MultiBuy:
    """A store's offer of `quantity` units for `total_cents` together."""

    quantity: int
    total_cents: int


@dataclass(frozen=True, slots=True)
class Offer:
    """What one store charges for one unit of a line (the product itself, or a substitute)."""

    unit_cents: int
    product: str | None = None
    """Which product is bought there, when the caller wants it named: `chain:sku`."""
    multibuy: MultiBuy | None = None

    def sets(self, quantity: int) -> int:
        """Return how many multi-buy sets buying `quantity` takes, where the offer saves anything."""
        deal = self.multibuy
        if deal is None or deal.quantity < 2 or deal.total_cents >= deal.quantity * self.unit_cents:
            return 0
        return quantity // deal.quantity

    def cost(self, quantity: int) -> int:
        """Return what `quantity` units cost: whole multi-buy sets at the offer, the rest one by one."""
        sets = self.sets(quantity)
        if not sets:
            return self.unit_cents * quantity
        assert self.multibuy is not None  # sets() is 0 without one
        return sets * self.multibuy.total_cents + (quantity - sets * self.multibuy.quantity) * self.unit_cents


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the basket: a quantity, and the offer of each store that sells it."""

    item: str
    quantity: int
    offers: Mapping[str, Offer]


@dataclass(frozen=True, slots=True)
class Purchase:
    """A line bought at one store."""

    item: str
    store: str
    quantity: int
    unit_cents: int
    cost_cents: int
    product: str | None
    multibuy: MultiBuy | None = None
    """The multi-buy offer taken for part of the quantity, if any."""


@dataclass(frozen=True, slots=True)
class Split:
    """The basket bought across some stores: what it costs and the lines none of them sells."""

    stores: tuple[str, ...]
    total_cents: int
    purchases: tuple[Purchase, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Tell whether every line is bought."""
        return not self.missing


@dataclass(frozen=True, slots=True)
class StoreTotal(Split):
    """The whole basket at one store."""

    @property
    def store(self) -> str:
        """Return the one store."""
        return self.stores[0]


@dataclass(frozen=True, slots=True)
class BasketComparison:
    """Each store's total, the best single store, the best split and what the split saves."""

    per_store: tuple[StoreTotal, ...]
    best_store: StoreTotal | None
    best_split: Split | None
    saving_cents: int | None
    """The best single store's total less the split's, when both buy every line; else None."""


def compare_basket(lines: Sequence[Line], stores: Sequence[str], *, max_stores: int) -> BasketComparison:
    """Price the basket at each store and find the cheapest split across at most `max_stores` of them."""
    _check(lines, stores, max_stores)
    order = {store: position for position, store in enumerate(stores)}
    per_store = tuple(_at_store(lines, store) for store in stores)
    best_store = min(per_store, key=lambda t: (len(t.missing), t.total_cents, order[t.store]), default=None)
    if best_store is not None and best_store.missing and not best_store.purchases:
        best_store = None  # no store sells any of it: none is the best
    best_split = _best_split(lines, stores, max_stores, order)
    saving = None
    if best_store is not None and best_split is not None and best_store.complete and best_split.complete:
        saving = best_store.total_cents - best_split.total_cents
    ranked = tuple(sorted(per_store, key=lambda t: (len(t.missing), t.total_cents, order[t.store])))
    return BasketComparison(
        per_store=ranked, best_store=best_store, best_split=best_split, saving_cents=saving
    )


def _check(lines: Sequence[Line], stores: Sequence[str], max_stores: int) -> None:
    """Refuse a basket that cannot be compared, saying which part is wrong."""
    if len(set(stores)) != len(stores):
        raise ValueError("stores: each store may be named once")
    if max_stores < 1:
        raise ValueError("max_stores: must be at least 1")
    items = [line.item for line in lines]
    if len(set(items)) != len(items):
        raise ValueError("lines: each item may appear once (add up its quantities instead)")
    for line in lines:
        if line.quantity < 1:
            raise ValueError(f"lines: the quantity of {line.item!r} must be at least 1")
        if any(offer.unit_cents < 0 for offer in line.offers.values()):
            raise ValueError(f"lines: a price of {line.item!r} is negative")
        deals = [o.multibuy for o in line.offers.values() if o.multibuy]
        if any(deal.quantity < 1 or deal.total_cents < 0 for deal in deals):
            raise ValueError(f"lines: a multi-buy offer of {line.item!r} is not a positive count and price")
    subsets = sum(comb(len(stores), k) for k in range(1, min(max_stores, len(stores)) + 1))
    if subsets > MAX_SUBSETS:
        raise ValueError(
            f"max_stores: {len(stores)} stores taken up to {max_stores} at a time make {subsets:,} "
            f"combinations, more than {MAX_SUBSETS:,}; choose fewer stores or a smaller N"
        )


def _at_store(lines: Sequence[Line], store: str) -> StoreTotal:
    """Price the basket at one store."""
    purchases, missing = [], []
    for line in lines:
        offer = line.offers.get(store)
        if offer is None:
            missing.append(line.item)
        else:
            purchases.append(_purchase(line, store, offer))
    return StoreTotal((store,), sum(p.cost_cents for p in purchases), tuple(purchases), tuple(missing))


def _best_split(
    lines: Sequence[Line], stores: Sequence[str], max_stores: int, order: Mapping[str, int]
) -> Split | None:
    """Try every subset of up to `max_stores` stores; return the best by the module's ranking."""
    best: Split | None = None
    best_key: tuple[int, int, int, tuple[int, ...]] | None = None
    for size in range(1, min(max_stores, len(stores)) + 1):
        for subset in combinations(stores, size):
            split = _split_within(lines, subset, order)
            key = (
                len(split.missing),
                split.total_cents,
                len(split.stores),
                tuple(order[s] for s in split.stores),
            )
            if best_key is None or key < best_key:
                best, best_key = split, key
    return best


def _split_within(lines: Sequence[Line], subset: Sequence[str], order: Mapping[str, int]) -> Split:
    """Buy each line at its cheapest store of the subset (equal costs: the store named first)."""
    purchases, missing = [], []
    for line in lines:
        offered = [
            (offer.cost(line.quantity), order[store], store)
            for store in subset
            if (offer := line.offers.get(store))
        ]
        if not offered:
            missing.append(line.item)
            continue
        _, _, store = min(offered)
        purchases.append(_purchase(line, store, line.offers[store]))
    used = tuple(sorted({p.store for p in purchases}, key=order.__getitem__))
    return Split(used, sum(p.cost_cents for p in purchases), tuple(purchases), tuple(missing))


def _purchase(line: Line, store: str, offer: Offer) -> Purchase:
    """Buy a line's whole quantity at a store, in multi-buy sets where the store's offer saves."""
    return Purchase(
        item=line.item,
        store=store,
        quantity=line.quantity,
        unit_cents=offer.unit_cents,
        cost_cents=offer.cost(line.quantity),
        product=offer.product,
        multibuy=offer.multibuy if offer.sets(line.quantity) else None,
    )
