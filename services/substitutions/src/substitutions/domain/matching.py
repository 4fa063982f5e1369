"""Find each product's substitutes at four levels: pure, vectorised, incremental.

- L1 identical: the same barcode, else the same brand, name words and size, at another chain.
- L2 near-identical: the same item under another name at another chain: a name alike by
  rapidfuzz (compared only inside blocks of equal size) and by meaning, the same brand.
- L3 same kind, another brand, comparable size: the names without brand alike by meaning
  (embeddings) and letter by letter (character trigrams), closest size and variant first,
  and those naming the query's words that tell items apart (penne, farfalle).
- L4 a looser alternative: related by meaning, in the same category where both say one (the
  shared tree's category where the chain's is mapped, so chains' categories meet), a near
  size first.

An `Index` holds every product with its name embedding in growable arrays; `find` scores
a batch of products against all of them with matrix products and `process.cdist`, never a
Python loop over pairs. Adding a product returns the products whose lists may change.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from substitutions.domain import weights
from substitutions.domain.products import (
    ParsedProduct,
    Size,
    kind_words,
    ngram_vector,
    size_bucket,
    sizes_compatible,
    variant_mask,
)

Level = Literal["L1", "L2", "L3", "L4"]
LEVELS: tuple[Level, ...] = ("L1", "L2", "L3", "L4")
Vectors = npt.NDArray[np.float32]

NGRAM_DIMENSIONS = 512
"""Slots of a name's hashed character trigrams, held beside its embedding."""
_DIMENSIONS = {"mass": 0, "volume": 1, "count": 2, "length": 3, "bare": 4, None: -1}
_NO_SIZE = -1


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds and list lengths of each level."""

    l1_size_tolerance: float = 0.02
    l2_size_tolerance: float = 0.05
    l2_min_score: float = 0.55
    l2_fuzzy_weight: float = 0.5
    l2_variant_penalty: float = 0.15
    l2_unbranded_min: float = 0.9
    l2_pack_penalty: float = 0.15
    l3_min_similarity: float = 0.55
    l3_max_size_ratio: float = 2.0
    l3_size_weight: float = weights.SIZE_PER_DOUBLING
    l3_variant_penalty: float = weights.PER_VARIANT_WORD
    l3_tier_penalty: float = weights.OTHER_TIER
    l3_missing_word_penalty: float = weights.PER_MISSING_WORD
    l4_min_similarity: float = 0.4
    l4_size_weight: float = 0.05
    """What L4 takes off per doubling of size, up to `L4_DOUBLINGS` (also where sizes do not compare)."""
    ngram_weight: float = weights.NGRAM_WEIGHT
    """The trigrams' share of how alike two names are; an `Index` takes it when it is made.

    L3's weights (this, size, variant, tier and missing word) are in `weights`, with how they were chosen."""
    keep: tuple[tuple[Level, int], ...] = (("L1", 10), ("L2", 5), ("L3", 10), ("L4", 10))
    chunk: int = 1024
    shortlist: int = 96

    def limit(self, level: Level) -> int:
        """Return how many substitutes of a level a product keeps."""
        return dict(self.keep)[level]


@dataclass(frozen=True, slots=True)
class Match:
    """One substitute of a product: the index of the other product, its level, score and why."""

    level: Level
    other: int
    score: float
    reason: str


@dataclass(slots=True)
class Index:
    """Every product with its embedding, in arrays that grow as products arrive.

    A product is held as one unit vector: its name's embedding and its name's character
    trigrams side by side, weighted so that one dot product is the blend of both
    similarities (`ngram_weight` of the trigrams'). Meaning finds "skim milk" for "lite
    milk"; trigrams find "Rahmcamembert" for "Rahm-Camembert" whatever the model knows.
    """

    dimensions: int
    ngram_weight: float = 0.0
    distinguishing: frozenset[str] = frozenset()
    """Words that tell one brand's items apart (`products.distinguishing_words`): L3 weighs the query's
    ones a candidate lacks."""
    products: list[ParsedProduct] = field(default_factory=list)
    _vectors: Vectors = field(init=False)
    _letters: Vectors = field(init=False)
    """The trigram part of `_vectors` transposed, a slot a row: a name's few slots are read whole."""
    _chains: dict[str, int] = field(default_factory=dict)
    _brands: dict[str, int] = field(default_factory=dict)
    _categories: dict[str, int] = field(default_factory=dict)
    _columns: dict[str, npt.NDArray[Any]] = field(init=False)
    _kinds: npt.NDArray[np.object_] = field(init=False)
    """Each product's kind, so a block's names are gathered in one step."""
    _words: npt.NDArray[np.uint64] = field(init=False)
    """Each product's distinguishing words as bits, 64 a column."""
    _word_bits: dict[str, int] = field(init=False)
    """Each distinguishing word's bit."""
    _by_sku: dict[tuple[str, str], int] = field(default_factory=dict)
    _by_barcode: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    _by_key: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    _by_bucket: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))

    def __post_init__(self) -> None:
        self._vectors = np.zeros((64, self.dimensions + NGRAM_DIMENSIONS), dtype=np.float32)
        self._letters = np.zeros((NGRAM_DIMENSIONS, 64), dtype=np.float32)
        self._kinds = np.empty(64, dtype=object)
        self._word_bits = {word: bit for bit, word in enumerate(sorted(self.distinguishing))}
        self._words = np.zeros((64, max(1, -(-len(self._word_bits) // 64))), dtype=np.uint64)
        self._columns = {
            name: np.zeros(64, dtype=np.float64 if name in ("amount", "unit") else np.int64)
            for name in ("chain", "brand", "own", "variant", "category", "dimension", "amount", "unit", "tie")
        }

    def __len__(self) -> int:
        return len(self.products)

    @property
    def vectors(self) -> Vectors:
        """Return the embeddings of the products held, one row each."""
        return self._vectors[: len(self.products)]

    def position(self, chain: str, sku: str) -> int | None:
        """Return where a product is held, or None."""
        return self._by_sku.get((chain, sku))

    def put(self, product: ParsedProduct, vector: Vectors) -> int:
        """Add a product, or replace the one with its chain and sku; return its position."""
        at = self._by_sku.get((product.chain, product.sku))
        if at is None:
            at = len(self.products)
            self._grow(at + 1)
            self.products.append(product)
            self._by_sku[(product.chain, product.sku)] = at
        else:
            self._unlink(at)
            self.products[at] = product
        self._vectors[at, : self.dimensions] = np.sqrt(1.0 - self.ngram_weight) * vector
        self._vectors[at, self.dimensions :] = np.sqrt(self.ngram_weight) * ngram_vector(
            product.kind, NGRAM_DIMENSIONS
        )
        self._letters[:, at] = self._vectors[at, self.dimensions :]
        self._kinds[at] = product.kind
        self._link(at, product)
        return at

    def _grow(self, size: int) -> None:
        """Double the arrays when they are full, so that adding stays cheap on average."""
        capacity = len(self._vectors)
        if size <= capacity:
            return
        capacity = max(size, capacity * 2)
        self._vectors = np.resize(self._vectors, (capacity, self._vectors.shape[1]))
        letters = np.zeros((NGRAM_DIMENSIONS, capacity), dtype=np.float32)
        letters[:, : self._letters.shape[1]] = self._letters
        self._letters = letters
        self._columns = {name: np.resize(column, capacity) for name, column in self._columns.items()}
        self._kinds = np.resize(self._kinds, capacity)
        self._words = np.resize(self._words, (capacity, self._words.shape[1]))

    def _link(self, at: int, product: ParsedProduct) -> None:
        """Record a product in the lookups and columns."""
        columns = self._columns
        columns["chain"][at] = _code(self._chains, product.chain)
        columns["brand"][at] = _code(self._brands, product.brand_key) if product.brand else -1
        columns["own"][at] = product.own_brand
        columns["variant"][at] = variant_mask(product.title)
        self._words[at] = 0
        for word in kind_words(product.kind):
            if (bit := self._word_bits.get(word)) is not None:
                self._words[at, bit // 64] |= np.uint64(1 << (bit % 64))
        columns["category"][at] = _code(self._categories, product.category) if product.category else -1
        size = product.size
        columns["dimension"][at] = _DIMENSIONS[size.dimension if size else None]
        columns["amount"][at] = _normal_amount(size)
        columns["unit"][at] = _normal_amount(size.unit if size else None)
        columns["tie"][at] = _tie_key(product.chain, product.sku)
        if product.barcode:
            self._by_barcode[product.barcode].add(at)
        self._by_key[product.key].add(at)
        for bucket in _buckets(size):
            self._by_bucket[bucket].add(at)

    def _unlink(self, at: int) -> None:
        """Forget a product's lookups before it is replaced."""
        old = self.products[at]
        if old.barcode:
            self._by_barcode[old.barcode].discard(at)
        self._by_key[old.key].discard(at)
        for bucket in _buckets(old.size):
            self._by_bucket[bucket].discard(at)

    def similarities(self, rows: Sequence[int]) -> Vectors:
        """Return how alike the products at these positions are to every product held, a row each."""
        meaning, letters = self.similarity_parts(rows)
        meaning += letters
        return meaning

    def similarity_parts(self, rows: Sequence[int]) -> tuple[Vectors, Vectors]:
        """Return the two parts of `similarities`, meaning's and the trigrams', each weighted: their sum.

        L2 reads meaning alone, L3 and L4 the sum: one pass over the embeddings serves both.
        """
        held, width = len(self.products), self.dimensions
        queries = np.asarray(rows, dtype=np.int64)
        vectors = self._vectors[:held]
        meaning = vectors[queries, :width] @ vectors[:, :width].T
        if len(queries) > _FEW:
            return meaning, vectors[queries, width:] @ vectors[:, width:].T
        # A name has a few dozen trigram slots of 512: read only those rows of the transposed part.
        letters = np.empty_like(meaning)
        for i, query in enumerate(queries):
            slots = np.flatnonzero(self._vectors[query, width:])
            letters[i] = self._vectors[query, width + slots] @ self._letters[slots, :held]
        return meaning, letters

    def find(
        self,
        queries: Sequence[int],
        policy: Policy,
        *,
        within: str | None = None,
        parts: tuple[Vectors, Vectors] | None = None,
        near: dict[int, set[int]] | None = None,
    ) -> dict[int, list[Match]]:
        """Find the substitutes of the products at the given positions, best first within each level.

        `within` keeps only substitutes at that chain (offline matching of one file against another);
        `parts` is `similarity_parts(queries)` when the caller has it already (one chunk at most);
        `near`, when given, receives each query's `near_identical_candidates` on the way.
        """
        within_code = self._chains.get(within, -2) if within is not None else None
        if parts is None and len(queries) <= policy.chunk:
            parts = self.similarity_parts(queries)
        meaning, similarity = (None, None) if parts is None else (parts[0], parts[0] + parts[1])
        found: dict[int, list[Match]] = {query: [] for query in queries}
        taken: dict[int, set[int]] = {query: {query} for query in queries}
        for query in queries:
            identical = self._identical(query, policy, within)
            found[query] += identical[: policy.limit("L1")]
            # Listings cut by the limit are still the same item: never offer them at a looser level.
            taken[query].update(match.other for match in identical)
        same_items = self._near_identical(queries, policy, taken, within_code, every=near, meaning=meaning)
        for query, matches in same_items.items():
            found[query] += matches
            taken[query].update(match.other for match in matches)
        for query, matches in self._alternatives(queries, policy, taken, within_code, similarity).items():
            found[query] += matches
        return found

    def _identical(self, query: int, policy: Policy, within: str | None) -> list[Match]:
        """Return every listing of the same item at other chains: by barcode, else brand, name and size."""
        product = self.products[query]
        matches: dict[int, Match] = {}
        if product.barcode:
            for other in self._by_barcode.get(product.barcode, ()):
                if self._elsewhere(other, product.chain, within):
                    matches[other] = Match("L1", other, 1.0, f"same barcode {product.barcode}")
        for other in self._by_key.get(product.key, ()):
            candidate = self.products[other]
            if other in matches or not self._elsewhere(other, product.chain, within):
                continue
            if _distinct_items(product, candidate):
                continue
            if _same_size(product.size, candidate.size, policy.l1_size_tolerance):
                matches[other] = Match("L1", other, 1.0, "same brand, name and size")
        return sorted(matches.values(), key=lambda match: self._order(match.other))

    def _elsewhere(self, other: int, chain: str, within: str | None) -> bool:
        """Tell whether a product is at another chain than `chain`, and at `within` when given."""
        other_chain = self.products[other].chain
        return other_chain != chain and (within is None or other_chain == within)

    def near_identical_candidates(self, at: int, policy: Policy) -> set[int]:
        """Return every product that may take this one as its same item under another name (L2).

        Alike enough, of one brand and size, before each chain keeps its best: whose L2 lists a
        new product may change, though it keeps none of them in its own list.
        """
        every: dict[int, set[int]] = {}
        self._near_identical([at], policy, {at: {at}}, None, every=every)
        return every.get(at, set())

    def _near_identical(
        self,
        queries: Sequence[int],
        policy: Policy,
        taken: dict[int, set[int]],
        within: int | None,
        *,
        every: dict[int, set[int]] | None = None,
        meaning: Vectors | None = None,
    ) -> dict[int, list[Match]]:
        """Return the same items under other names: fuzzy names inside blocks of equal size.

        `every`, when given, receives all candidates of each query, before items listed at the
        query's chain already are left out and each chain keeps its best; `meaning`, when given,
        is the first of `similarity_parts(queries)`.
        """
        row_of = {query: i for i, query in enumerate(queries)}
        found: dict[int, list[Match]] = defaultdict(list)
        by_bucket: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for query in queries:
            # A pack is also looked for by one of its items: shops size "6 x 200 mL" 1.2 L or 0.2 L.
            buckets = _buckets(self.products[query].size)
            if buckets[0] != _NO_SIZE:
                by_bucket[buckets].append(query)
        columns = self._columns
        tolerance = 1 + policy.l2_size_tolerance
        for buckets, block in by_bucket.items():
            near = {b + step for b in buckets for step in (-1, 0, 1)}
            candidates = np.fromiter(
                sorted(set().union(*(self._by_bucket.get(b, set()) for b in near))), dtype=np.int64
            )
            if within is not None:
                candidates = candidates[columns["chain"][candidates] == within]
            rows = np.asarray(block, dtype=np.int64)
            # Cheap column tests first, so names are compared only where the item could be the same;
            # brands are judged pair by pair after (a maker and its line are one brand).
            same_size = _size_ratios(self, rows[:, None], candidates[None, :]) <= tolerance
            one_item = _unit_ratios(self, rows[:, None], candidates[None, :]) <= tolerance
            possible = (columns["chain"][rows][:, None] != columns["chain"][candidates][None, :]) & (
                same_size | one_item
            )
            keep = possible.any(axis=0)
            candidates, possible, same_size = candidates[keep], possible[:, keep], same_size[:, keep]
            if not len(candidates):
                continue
            fuzzy = process.cdist(
                self._kinds[rows].tolist(),
                self._kinds[candidates].tolist(),
                scorer=fuzz.token_sort_ratio,
                dtype=np.float32,
                # Threads pay off only on big blocks; a single new product is compared faster alone.
                workers=-1 if len(block) * len(candidates) > 50_000 else 1,
            )
            if meaning is None:
                alike = self._meaning(rows, candidates)
            else:
                weighted = meaning[np.ix_([row_of[query] for query in block], candidates)]
                alike = weighted.astype(np.float64) / max(1.0 - self.ngram_weight, 1e-6)
            score = policy.l2_fuzzy_weight * fuzzy / 100.0 + (1 - policy.l2_fuzzy_weight) * alike
            # Where a score may count, its meaning is recomputed pair by pair (see `_pair_dots`).
            counted = np.nonzero(possible & (score >= policy.l2_min_score - _SLACK))
            exact = self._pair_dots(rows[counted[0]], candidates[counted[1]], self.dimensions)
            exact /= max(1.0 - self.ngram_weight, 1e-6)
            score[counted] += (1 - policy.l2_fuzzy_weight) * (exact - alike[counted])
            # A variant word on one side only (organic, lite) makes another item more likely, not certain.
            differing = np.bitwise_count(
                columns["variant"][rows][:, None] ^ columns["variant"][candidates][None, :]
            )
            score -= policy.l2_variant_penalty * differing
            # Sized as one item of the other's pack: the pack listed per item, or the single item.
            score -= np.where(same_size, 0.0, policy.l2_pack_penalty)
            allowed = possible & (score >= policy.l2_min_score)
            for i, query in enumerate(block):
                # A chain lists an item once: where the item was found identical, nothing else is it.
                settled = {self.products[other].chain for other in taken[query]}
                for j in np.flatnonzero(allowed[i]):
                    other = int(candidates[j])
                    if not self._brand_shared(query, other, policy):
                        continue
                    if _distinct_items(self.products[query], self.products[other]):
                        continue
                    if every is not None:
                        every.setdefault(query, set()).add(other)
                    if other in taken[query] or self.products[other].chain in settled:
                        continue
                    if self._identical_elsewhere(other, query, policy):
                        continue
                    size = "same size" if same_size[i, j] else "sized as one of a pack"
                    reason = f"{size}, names {fuzzy[i, j]:.0f}% alike"
                    found[query].append(Match("L2", other, round(float(score[i, j]), 4), reason))
        return {query: _best_per_chain(matches, self, policy.limit("L2")) for query, matches in found.items()}

    def _meaning(self, rows: npt.NDArray[np.int64], others: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Return the embeddings' cosine similarities alone, rows against others."""
        width = self.dimensions
        dots = self._vectors[rows, :width] @ self._vectors[others, :width].T
        return dots.astype(np.float64) / max(1.0 - self.ngram_weight, 1e-6)

    def _pair_dots(
        self, rows: npt.NDArray[np.int64], others: npt.NDArray[np.int64], width: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Return the dot products of pairs of vectors (their first `width` values), in float64.

        A matrix product's float32 sums depend on the batch a pair is computed in, so a score kept
        to 4 places could differ between a product added alone and a rebuild; pair by pair in
        float64 it is the same whatever the batch.
        """
        found = np.empty(len(rows), dtype=np.float64)
        for start in range(0, len(rows), _PAIRS):
            piece = slice(start, start + _PAIRS)
            left = self._vectors[rows[piece], :width].astype(np.float64)
            right = self._vectors[others[piece], :width].astype(np.float64)
            found[piece] = np.einsum("ij,ij->i", left, right)
        return found

    def _shortlisted(
        self, rows: npt.NDArray[np.int64], near: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Return how alike each row is to its shortlisted products, in float64 (see `_pair_dots`).

        Each row's vector is gathered once against its shortlist's, not once per pair.
        """
        found = np.empty(near.shape, dtype=np.float64)
        step = max(1, _PAIRS // max(near.shape[1], 1))
        for start in range(0, len(rows), step):
            piece = slice(start, start + step)
            left = self._vectors[rows[piece]].astype(np.float64)[:, :, None]
            found[piece] = np.matmul(self._vectors[near[piece]].astype(np.float64), left)[:, :, 0]
        return found

    def _identical_elsewhere(self, other: int, query: int, policy: Policy) -> bool:
        """Tell whether `other` has an identical listing at the query's chain: items are listed once."""
        chain, product = self.products[query].chain, self.products[other]
        for partner in self._by_key.get(product.key, set()):
            listing = self.products[partner]
            same_size = _same_size(listing.size, product.size, policy.l1_size_tolerance)
            if partner != query and listing.chain == chain and same_size:
                return True
        barcode = product.barcode
        partners = self._by_barcode.get(barcode, set()) if barcode else set()
        return any(p != query and self.products[p].chain == chain for p in partners)

    def _brand_shared(self, query: int, other: int, policy: Policy) -> bool:
        """Tell whether two listings can be one brand's: equal, one named in the other, or one name."""
        a, b = self.products[query], self.products[other]
        if a.brand and b.brand:
            # A maker and its line ("Danone" and "Yopro Danone ..."): one brand's words in the other's name.
            return a.brand_key == b.brand_key or _names(a.brand, b.title) or _names(b.brand, a.title)
        if not a.brand and not b.brand:
            # Two listings without a brand are not thereby of one brand (two house brands, unnamed,
            # differ in their first words): only names of the same letters can be the same item.
            return _same_letters(a.title, b.title, policy.l2_unbranded_min)
        known, unknown = (a, b) if a.brand else (b, a)
        # The brand in the other name, or the other name is this one without its brand (a brand
        # the other shop leaves out: "Almond Breeze ..." by Blue Diamond).
        return _in_name(known.brand_key, unknown.title) or _same_letters(
            known.kind, unknown.title, policy.l2_unbranded_min
        )

    def _alternatives(
        self,
        queries: Sequence[int],
        policy: Policy,
        taken: dict[int, set[int]],
        within: int | None,
        known: Vectors | None = None,
    ) -> dict[int, list[Match]]:
        """Return L3 (same kind, another brand, comparable size) and L4 (related) by embedding similarity.

        Each chunk of queries is one matrix product; the `shortlist` most alike products of
        each query are then judged on brand, size and category, so no mask spans all pairs.
        """
        found: dict[int, list[Match]] = {}
        columns = self._columns
        shortlist = min(policy.shortlist, len(self.products))
        # Below both minimums a candidate is never chosen, so ties there need not be settled.
        floor = min(policy.l3_min_similarity, policy.l4_min_similarity)
        for start in range(0, len(queries), policy.chunk):
            block = list(queries[start : start + policy.chunk])
            rows = np.asarray(block, dtype=np.int64)
            if known is not None and len(queries) <= policy.chunk:
                similarity = known
            else:
                similarity = self.similarities(block)
            similarity[np.arange(len(rows)), rows] = -1.0
            if within is not None:
                similarity[:, columns["chain"][: len(self.products)] != within] = -1.0
            if shortlist < similarity.shape[1]:
                near = _nearest(similarity, columns["tie"], shortlist, floor)
            else:
                near = np.broadcast_to(np.arange(similarity.shape[1]), similarity.shape)
            # Left out (itself, another chain than `within`): -1 as the shortlist saw them.
            alike = np.where(
                np.take_along_axis(similarity, near, axis=1) <= -1.0, -1.0, self._shortlisted(rows, near)
            )
            brand_q, brand_c = columns["brand"][rows][:, None], columns["brand"][near]
            another_brand = (brand_q != brand_c) | (brand_q < 0)
            doublings, differing, tier, missing = self._differences(rows[:, None], near)
            comparable = doublings <= np.log2(policy.l3_max_size_ratio)
            category_q, category_c = columns["category"][rows][:, None], columns["category"][near]
            same_category = (category_q == category_c) | (category_q < 0) | (category_c < 0)
            # Among equally alike alternatives, the one closest in size is the better buy-instead;
            # a variant word on one side only (light, organic) makes a worse one, not a wrong one,
            # and so does another tier (a maker's brand for a house brand, or the other way).
            # All only lower the blend, so a score never exceeds the similarity that shortlists it.
            closeness = policy.l3_size_weight * np.where(comparable, doublings, 0.0)
            closeness += policy.l3_variant_penalty * differing + policy.l3_tier_penalty * tier
            # A word that tells items apart (penne, farfalle) named by the query and not the candidate.
            closeness += policy.l3_missing_word_penalty * missing
            l3 = np.where(another_brand & comparable, alike - closeness, -1.0)
            # A related product of a size near the query's is the better alternative; unlike sizes
            # (or unknown ones) count as `L4_DOUBLINGS` apart, so size only orders near equals.
            apart = policy.l4_size_weight * np.minimum(doublings, L4_DOUBLINGS)
            l4 = np.where(same_category, alike - apart, -1.0)
            ties = columns["tie"][near]
            for i, query in enumerate(block):
                picked = _top(
                    near[i], ties[i], l3[i], policy.l3_min_similarity, policy.limit("L3"), taken[query]
                )
                chosen = [
                    Match(
                        "L3",
                        other,
                        score,
                        f"same kind ({score:.2f} alike), another brand, size {self._size(other)}",
                    )
                    for other, score in picked
                ]
                skip = taken[query] | {match.other for match in chosen}
                related = _top(near[i], ties[i], l4[i], policy.l4_min_similarity, policy.limit("L4"), skip)
                chosen += [
                    Match("L4", other, score, f"related ({score:.2f} alike)") for other, score in related
                ]
                found[query] = chosen
        return found

    def _differences(
        self, rows: npt.NDArray[np.int64], others: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Return what parts broadcast pairs: doublings of size (inf: not comparable), variant words, tier,
        and the query's distinguishing words the other lacks."""
        doublings = np.log2(_size_ratios(self, rows, others))
        variant, own = self._columns["variant"], self._columns["own"]
        differing = np.bitwise_count(variant[rows] ^ variant[others]).astype(np.int64)
        words = self._words
        missing = np.bitwise_count(words[rows] & ~words[others]).sum(axis=-1, dtype=np.int64)
        return doublings, differing, own[rows] ^ own[others], missing

    def l3_features(self, query: int, others: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.float64]]:
        """Return what L3 weighs for a product against others, one value each: the readable features.

        `meaning` (the embeddings' cosine), `letters` (the trigrams'), `doublings` of size,
        `variant` words on one side only, `tier` (1: one is its chain's own brand, the other
        not) and `missing` (the query's distinguishing words the other lacks); `eligible` is 1
        for another brand with a size in the same dimension. What the weights are learned from
        (benchmarks.substitutions_weights).
        """
        width, weight = self.dimensions, self.ngram_weight
        vectors = self._vectors
        meaning = vectors[others, :width] @ vectors[query, :width] / max(1.0 - weight, 1e-6)
        letters = vectors[others, width:] @ vectors[query, width:] / max(weight, 1e-6)
        doublings, differing, tier, missing = self._differences(np.full(len(others), query), others)
        brands = self._columns["brand"]
        another_brand = (brands[others] != brands[query]) | (brands[query] < 0)
        return {
            "meaning": meaning.astype(np.float64),
            "letters": letters.astype(np.float64),
            "doublings": doublings,
            "variant": differing.astype(np.float64),
            "tier": tier.astype(np.float64),
            "missing": missing.astype(np.float64),
            "eligible": (another_brand & np.isfinite(doublings)).astype(np.float64),
        }

    def _size(self, at: int) -> str:
        """Describe a held product's size."""
        size = self.products[at].size
        return size.describe() if size else "unknown"

    def _order(self, at: int) -> tuple[str, str]:
        """Order products by chain and sku, so equal scores rank the same way every time."""
        product = self.products[at]
        return (product.chain, product.sku)


L4_DOUBLINGS = 2.0
"""The doublings of size L4 weighs at most: sizes further apart, or not comparable, weigh as this."""
_BUCKET_WIDTH = 0.05
_SLACK = 1e-3
"""How far below a minimum a float32 score is still recomputed exactly: far more than its error."""
_PAIRS = 4096
"""Pairs whose vectors are gathered at once, so that a piece stays a few megabytes."""
_FEW = 64
"""Up to this many rows, the trigram part of similarities is read slot by slot, not as a matrix."""


def _code(codes: dict[str, int], value: str) -> int:
    """Give a value a small integer code, the same one every time."""
    return codes.setdefault(value, len(codes))


def _tie_key(chain: str, sku: str) -> int:
    """Return a product's own number for ordering equal scores: the same wherever it is held."""
    digest = hashlib.blake2b(f"{chain}\x00{sku}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _normal_amount(size: Size | None) -> float:
    """Return a size's amount on one scale per dimension: a bare number counts as kilograms or litres."""
    if size is None:
        return float("nan")
    return size.amount * 1000.0 if size.dimension == "bare" else size.amount


def _buckets(size: Size | None) -> tuple[int, ...]:
    """Return the size buckets a product is held in: its size's, and one item's when it is a pack."""
    bucket = size_bucket(size, width=_BUCKET_WIDTH)
    if bucket is None:
        return (_NO_SIZE,)
    unit = size_bucket(size.unit, width=_BUCKET_WIDTH) if size else None
    return (bucket,) if unit is None else (bucket, unit)


def _unit_ratios(
    index: Index, rows: npt.NDArray[np.int64], others: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Return how many times larger one item of a pack is than a product not one, for broadcast pairs."""
    unit, amount = index._columns["unit"], index._columns["amount"]
    pack_q, pack_c = ~np.isnan(unit[rows]), ~np.isnan(unit[others])
    amount_q = np.where(pack_q & ~pack_c, unit[rows], amount[rows])
    amount_c = np.where(pack_c & ~pack_q, unit[others], amount[others])
    ratio = _size_ratios(index, rows, others, amount_q, amount_c)
    return np.where(pack_q != pack_c, ratio, np.inf)


def _size_ratios(
    index: Index,
    rows: npt.NDArray[np.int64],
    others: npt.NDArray[np.int64],
    amount_q: npt.NDArray[np.float64] | None = None,
    amount_c: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Return how many times larger the larger size is, for broadcast pairs (inf: not comparable).

    `amount_q` and `amount_c` stand for the sizes' amounts where given (one item of a pack).
    """
    dimension, amount = index._columns["dimension"], index._columns["amount"]
    dim_q, dim_c = dimension[rows], dimension[others]
    bare = _DIMENSIONS["bare"]
    metric_c = (dim_c == _DIMENSIONS["mass"]) | (dim_c == _DIMENSIONS["volume"])
    metric_q = (dim_q == _DIMENSIONS["mass"]) | (dim_q == _DIMENSIONS["volume"])
    same_kind = (dim_q >= 0) & (
        (dim_q == dim_c) | ((dim_q == bare) & metric_c) | (metric_q & (dim_c == bare))
    )
    amount_q = amount[rows] if amount_q is None else amount_q
    amount_c = amount[others] if amount_c is None else amount_c
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(amount_q, amount_c) / np.minimum(amount_q, amount_c)
    return np.where(same_kind & ~np.isnan(ratio), ratio, np.inf)


def _names(brand: str, title: str) -> bool:
    """Tell whether a brand's words stand, whole and in order, in a title."""
    return f" {brand} " in f" {title} "


def _in_name(brand_key: str, title: str) -> bool:
    """Tell whether a brand (spaces dropped) is in a title's letters, possessive or not ("Whitlock's")."""
    letters = title.replace(" ", "")
    singular = brand_key.removesuffix("s")
    return brand_key in letters or (len(singular) >= 5 and singular in letters)


def _same_letters(a: str, b: str, minimum: float) -> bool:
    """Tell whether two names are the same letters (at least `minimum` alike), however spaced."""
    return fuzz.ratio("".join(a.split()), "".join(b.split())) >= 100 * minimum


def _distinct_items(a: ParsedProduct, b: ParsedProduct) -> bool:
    """Tell whether two global barcodes (GTINs) say these are different items.

    Barcodes starting with 2 are a shop's own in-store numbers and say nothing across shops.
    """
    if not a.barcode or not b.barcode or a.barcode.startswith("2") or b.barcode.startswith("2"):
        return False
    return a.barcode != b.barcode


def _same_size(a: Size | None, b: Size | None, tolerance: float) -> bool:
    """Tell whether two sizes are the same, or both unknown."""
    if a is None and b is None:
        return True
    return sizes_compatible(a, b, tolerance=tolerance)


def _nearest(
    similarity: npt.NDArray[np.float32], ties: npt.NDArray[np.int64], k: int, floor: float
) -> npt.NDArray[np.int64]:
    """Return the columns of each row's k highest similarities at or near `floor`, equal ones by tie key.

    Below both minimums no candidate is ever chosen, so only the columns within `_SLACK` of them
    are ranked (a few hundred of thousands); a row with fewer is padded with its least alike column.
    """
    wanted = similarity >= floor - _SLACK
    counts = wanted.sum(axis=1)
    width = max(1, min(k, int(counts.max(initial=0))))
    near = np.empty((len(similarity), width), dtype=np.int64)
    for i in range(len(similarity)):
        columns = np.flatnonzero(wanted[i])
        if len(columns) <= k:
            near[i, : len(columns)] = columns
            near[i, len(columns) :] = np.argmin(similarity[i])
            continue
        # Partitioning at k leaves a top k before it and the next highest at it, in one pass.
        order = columns[np.argpartition(-similarity[i, columns], k)]
        near[i] = order[:k]
        cut = _rounded(similarity[i, order[:k]].min())
        # Values equal (to 4 places) at the cut are split in no set order, which would make a list
        # depend on where products are held: there, take the lowest tie keys. Below both minimums
        # no candidate is ever chosen, so such rows are left alone.
        if _rounded(similarity[i, order[k]]) != cut or cut < floor:
            continue
        columns = np.flatnonzero(similarity[i] >= cut - 6e-5)  # all that may round to the cut
        rounded = _rounded(similarity[i, columns])
        above, level = columns[rounded > cut], columns[rounded == cut]
        wanted_ties = k - len(above)  # all above the cut are in: fewer than k of them
        level = level[np.argpartition(ties[level], wanted_ties - 1)[:wanted_ties]]
        near[i, : len(above)], near[i, len(above) :] = above, level
    return near


def _rounded(scores: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Round scores to 4 places as Python's round does: float32 ones would keep float32 noise."""
    wide: npt.NDArray[np.float64] = scores.astype(np.float64)
    return np.round(wide, 4)


def _top(
    positions: npt.NDArray[np.int64],
    ties: npt.NDArray[np.int64],
    scores: npt.NDArray[np.floating],
    minimum: float,
    k: int,
    skip: set[int],
) -> list[tuple[int, float]]:
    """Return up to k (position, score) pairs of the highest scores at or above a minimum, skipping some."""
    chosen: list[tuple[int, float]] = []
    # Scores equal to 4 places rank by the products' tie keys (position only if those collide),
    # so a list is the same whatever batch computed it and wherever its products are held.
    rounded = _rounded(scores)
    for at in np.lexsort((positions, ties, -rounded)):
        # The rounded score is the one judged: a raw one would cut a run of equals in two.
        score = float(rounded[at])
        if score < minimum or len(chosen) == k:
            break
        if int(positions[at]) not in skip:
            chosen.append((int(positions[at]), score))
    return chosen


def _best_per_chain(matches: list[Match], index: Index, k: int) -> list[Match]:
    """Keep the best-scored match of each chain (a chain lists an item once), k at most."""
    best: dict[str, Match] = {}
    # Equal scores rank by chain and sku, not by where the products are held.
    for match in sorted(matches, key=lambda match: (-match.score, index._order(match.other))):
        best.setdefault(index.products[match.other].chain, match)
    return list(best.values())[:k]
