"""The products known, their index and their current substitute lists: what an observation changes.

Pure bookkeeping over `matching.Index`: embeddings come in as arguments, lists go out
as rows ready to store and publish. A new or changed product gets its list, and the
products it points to (and those that pointed to it) get theirs recomputed, so links stay
two-way without a full rebuild.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from substitutions.domain.matching import Index, Level, Match, Policy, Vectors
from substitutions.domain.products import (
    ParsedProduct,
    distinguishing_words,
    house_brands,
    normalise,
    parse_product,
)

# Scores are kept to 4 places: anything within half a unit of a list's weakest entry may tie it.
ROUNDING = 5e-5

ProductKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SubstituteRow:
    """One entry of a product's list: the contract's Substitute fields."""

    level: Level
    chain: str
    sku: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Description:
    """A product as a chain describes it."""

    chain: str
    sku: str
    name: str
    brand: str | None = None
    size: str | None = None
    category: str | None = None
    barcode: str | None = None
    shared_category: str | None = None
    """The category on pricestream's shared tree (dairy/cheese), the same at every chain."""


def known_brands(descriptions: Iterable[Description], *, own: Iterable[str] | None = None) -> set[str]:
    """Collect the brands shops name, the chains' (store brands carry them) and the house brands learned.

    `own`: the house brands when already learned (`own_brands`), so they are not learned twice.
    """
    held = list(descriptions)
    brands: set[str] = set().union(*(_named_brands(description) for description in held))
    return brands | (own_brands(held) if own is None else set(own))


def _parsed(description: Description, *, brands: set[str], own: set[str]) -> ParsedProduct:
    """Parse a description with the brands and house brands given."""
    return parse_product(
        chain=description.chain,
        sku=description.sku,
        name=description.name,
        brand=description.brand,
        size=description.size,
        category=description.category,
        barcode=description.barcode,
        shared_category=description.shared_category,
        brands=brands,
        own_brands=own,
    )


def own_brands(descriptions: Iterable[Description]) -> set[str]:
    """Return the house brands learned from the names: each of one chain only (the chains' names aside)."""
    return house_brands((d.chain, d.name, d.brand) for d in descriptions)


def _named_brands(description: Description) -> set[str]:
    """Return the brands a description names: its chain's and its brand field's."""
    brands = {description.chain.replace("-", " ")}
    if description.brand:
        brands.add(normalise(description.brand))
    return brands


class Catalogue:
    """Every product with its embedding and its current list of substitutes."""

    def __init__(
        self,
        *,
        dimensions: int,
        policy: Policy,
        brands: Iterable[str] = (),
        own: Iterable[str] = (),
        distinguishing: Iterable[str] = (),
    ) -> None:
        self.policy = policy
        self.index = Index(
            dimensions=dimensions, ngram_weight=policy.ngram_weight, distinguishing=frozenset(distinguishing)
        )
        self.brands = set(brands)
        self.own = set(own)
        """The house brands learned: a product of one is of its chain's own brand (as one named after it)."""
        self.lists: dict[int, list[SubstituteRow]] = {}
        self._pointing_in: dict[int, set[int]] = defaultdict(set)
        self._floor = np.zeros(0, dtype=np.float32)

    @classmethod
    def learning(cls, descriptions: Sequence[Description], *, dimensions: int, policy: Policy) -> "Catalogue":
        """Return an empty catalogue knowing the descriptions' brands, house brands and distinguishing words.

        All are learned once: products observed later are weighed by what was learned here.
        """
        own = own_brands(descriptions)
        brands = known_brands(descriptions, own=own)  # every brand the descriptions name: parse learns none
        parsed = (_parsed(description, brands=brands, own=own) for description in descriptions)
        words = distinguishing_words((p.chain, p.brand_key, p.kind) for p in parsed if p.brand)
        return cls(dimensions=dimensions, policy=policy, brands=brands, own=own, distinguishing=words)

    def __len__(self) -> int:
        return len(self.index)

    def parse(self, description: Description) -> ParsedProduct:
        """Parse a description with the brands known so far, learning its own brand."""
        self.brands |= _named_brands(description)
        return _parsed(description, brands=self.brands, own=self.own)

    def load(self, products: Sequence[ParsedProduct], vectors: Iterable[Vectors]) -> None:
        """Hold products with their embeddings (one row each, in order), without computing lists."""
        for product, vector in zip(products, vectors, strict=True):
            self.index.put(product, vector)

    def observe(self, product: ParsedProduct, vector: Vectors) -> dict[ProductKey, list[SubstituteRow]]:
        """Add or replace a product; return the lists that changed (its own and its neighbours')."""
        at = self.index.put(product, vector)
        # One pass over every vector serves its own list and the lists it may enter.
        parts = self.index.similarity_parts([at])
        near: dict[int, set[int]] = {}
        own = self.index.find([at], self.policy, parts=parts, near=near)[at]
        # Its own L3/L4 alternatives are not recomputed for being in its list: a newcomer changes
        # another's L3/L4 list only by entering it, which the floors below catch (off that one's
        # shortlist it pushes only a product less alike than itself, so below that list's floor too).
        affected = set(self._pointing_in.get(at, set()))
        # Those pointing at its same items elsewhere: listed once at a chain, an item offered as
        # another's near-identical (L2) there is no longer so once its identical listing arrives.
        for match in own:
            if match.level in ("L1", "L2"):
                affected.add(match.other)
            if match.level == "L1":
                affected |= self._near_identical_to(match.other)
        # Those whose best same item at its chain it may now be, though its own list keeps another.
        affected |= near.get(at, set())
        # Those it would now displace from their L3/L4 lists: alike above their weakest entry, or
        # level with it once rounded (equal scores rank by tie key, so a newcomer may win the tie).
        floors = self._floors()
        alike = parts[0][0] + parts[1][0]
        affected.update(int(other) for other in np.flatnonzero(alike >= floors - ROUNDING))
        affected.discard(at)
        found = {at: own, **self.index.find(sorted(affected), self.policy)}
        return self._settle(found)

    def _near_identical_to(self, at: int) -> set[int]:
        """Return the products that list the one at `at` as their near-identical (L2)."""
        product = self.index.products[at]
        key = (product.chain, product.sku)
        return {
            other
            for other in self._pointing_in.get(at, ())
            if any(row.level == "L2" and (row.chain, row.sku) == key for row in self.lists.get(other, ()))
        }

    def rebuild(
        self, *, chunk: int = 512, progress: Callable[[int], None] | None = None
    ) -> dict[ProductKey, list[SubstituteRow]]:
        """Recompute every product's list; return those that changed."""
        positions = list(range(len(self.index)))
        changed: dict[ProductKey, list[SubstituteRow]] = {}
        for start in range(0, len(positions), chunk):
            block = positions[start : start + chunk]
            changed |= self._settle(self.index.find(block, self.policy))
            if progress is not None:
                progress(len(block))
        return changed

    def adopt(self, stored: dict[ProductKey, list[SubstituteRow]]) -> None:
        """Take lists stored earlier as the current ones, so only real changes are published."""
        for key, rows in stored.items():
            at = self.index.position(*key)
            if at is not None:
                self._replace(at, rows)

    def _settle(self, found: dict[int, list[Match]]) -> dict[ProductKey, list[SubstituteRow]]:
        """Turn matches into rows, keep those that differ from the current lists, and update links."""
        changed: dict[ProductKey, list[SubstituteRow]] = {}
        for at, matches in found.items():
            rows = [self._row(match) for match in matches]
            if rows != self.lists.get(at):
                self._replace(at, rows)
                product = self.index.products[at]
                changed[(product.chain, product.sku)] = rows
        return changed

    def _floors(self) -> npt.NDArray[np.float32]:
        """Return, per product, the similarity a newcomer needs to enter its L3 or L4 list."""
        held = len(self.index)
        if len(self._floor) < held:
            grown = np.full(max(held, 2 * len(self._floor)), self._open_floor(), dtype=np.float32)
            grown[: len(self._floor)] = self._floor
            self._floor = grown
        return self._floor[:held]

    def _open_floor(self) -> float:
        """Return the similarity that enters a list with room left at L3 or L4."""
        return min(self.policy.l3_min_similarity, self.policy.l4_min_similarity)

    def _entry_floor(self, rows: list[SubstituteRow]) -> float:
        """Return the similarity a newcomer needs to enter these L3 or L4 lists (the weakest, if full)."""
        floors = []
        levels: tuple[tuple[Level, float], ...] = (
            ("L3", self.policy.l3_min_similarity),
            ("L4", self.policy.l4_min_similarity),
        )
        for level, minimum in levels:
            scores = [row.score for row in rows if row.level == level]
            floors.append(min(scores) if len(scores) >= self.policy.limit(level) else minimum)
        return min(floors)

    def _replace(self, at: int, rows: list[SubstituteRow]) -> None:
        """Make rows the product's list and move the reverse links with it."""
        for row in self.lists.get(at, ()):
            other = self.index.position(row.chain, row.sku)
            if other is not None:
                self._pointing_in[other].discard(at)
        self.lists[at] = rows
        self._floors()[at] = self._entry_floor(rows)
        for row in rows:
            other = self.index.position(row.chain, row.sku)
            if other is not None:
                self._pointing_in[other].add(at)

    def _row(self, match: Match) -> SubstituteRow:
        """Write a match as the contract's Substitute fields."""
        other = self.index.products[match.other]
        return SubstituteRow(
            level=match.level, chain=other.chain, sku=other.sku, score=match.score, reason=match.reason
        )
