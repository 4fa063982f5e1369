"""Find the groups of a chain's stores that charge the same, each led by one anchor store.

Input is one chain's latest prices as a matrix: one row per store, one column per sku, int32
cents, 0 where the store has no fresh price (never scraped, out of the freshness window). Groups
never cross chains: the caller groups each chain on its own.

Two stores match when, over the products both have priced, at least `min_common` are common and
a share of at least `min_share` is priced the same (`matches`). `find_groups` never compares
every pair: banded fingerprints (`fingerprints.fingerprint`) propose candidates, and a greedy
pass confirms them exactly against anchors only:

1. stores are ranked as anchors: larger current group, then best coverage (most products priced),
   then freshest, then current anchors the caller wants to keep, then row order;
2. in that order, a store that is not in a group yet becomes an anchor, and each of its
   candidates that is not in a group yet and matches it (on full price vectors) joins it.

Matching is not transitive (B may match A and C match B while C does not match A), so a group
grown through members would drift away from its anchor. Step 2 confirms every member against
the anchor itself, never against another member, so no group can chain.

Choosing `min_share`: two stores of a zone differ on the exceptions of both. With 0.5% of a
store's prices off its zone they agree on ~99%, with 2% on ~96%, below the default 98%. On a
small basket the share is noisy too: 98% of 190 common products tolerates 3 differences, and a
store can draw twice its share of exceptions; thousands of common products make it steady.

Merging: the service regroups {current anchors} + {stores in no group}, passing the current
anchors as `keep_anchors` (and their group sizes as `group_sizes`). Current anchors that match
each other land in one group, led by the larger group's anchor (`changes.plan_changes` turns
that into merges). Their former members were confirmed against their former anchor only: the
caller moves them over and re-checks them against the new anchor.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from grouping.domain.fingerprints import DEFAULT_BAND_SIZE, DEFAULT_BANDS, fingerprint

DEFAULT_MIN_SHARE = 0.98
DEFAULT_MIN_COMMON = 50

# Candidates are confirmed against their anchor this many rows at a time, so that an anchor with
# thousands of candidates never copies thousands of full price vectors at once.
_CONFIRM_BLOCK = 256


@dataclass(frozen=True, slots=True)
class Group:
    """Name a group's anchor and its members (anchor excluded)."""

    anchor: str
    members: tuple[str, ...] = ()

    @property
    def stores(self) -> tuple[str, ...]:
        """Return the anchor followed by the members."""
        return (self.anchor, *self.members)


@dataclass(frozen=True, slots=True)
class GroupingResult:
    """Hold the groups (every store in exactly one) and how many exact comparisons found them."""

    groups: tuple[Group, ...]
    """Groups in anchor rank order, members in row order; a store that matches nobody is alone."""
    pairs_compared: int
    """Exact confirmations done: one per (anchor, candidate) pair checked with full vectors."""
    pairs_possible: int
    """Pairs of stores a brute-force grouping would compare: n * (n - 1) / 2."""

    @property
    def compared_share(self) -> float:
        """Return the share of possible pairs that were compared exactly (0 when there are none)."""
        return self.pairs_compared / self.pairs_possible if self.pairs_possible else 0.0

    def anchor_of(self) -> dict[str, str]:
        """Return each store's anchor (an anchor's is itself)."""
        return {store: group.anchor for group in self.groups for store in group.stores}


def match_counts(a: npt.NDArray[np.int32], b: npt.NDArray[np.int32]) -> tuple[int, int]:
    """Return (common, equal): products both stores priced, and how many of those they price the same."""
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"need two price vectors of one length, not shapes {a.shape} and {b.shape}")
    common, equal = _counts_against(a, b[np.newaxis, :], np.zeros(1, dtype=np.intp))
    return int(common[0]), int(equal[0])


def matches(
    a: npt.NDArray[np.int32],
    b: npt.NDArray[np.int32],
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    min_common: int = DEFAULT_MIN_COMMON,
) -> bool:
    """Tell whether two stores price the same on `min_share` of at least `min_common` common products."""
    common, equal = match_counts(a, b)
    return counts_match(common, equal, min_share=min_share, min_common=min_common)


def counts_match(common: int, equal: int, *, min_share: float, min_common: int) -> bool:
    """Apply the match rule to two stores' counts of common products and of equal prices among them."""
    _check_rule(min_share, min_common)
    return bool(_qualifies(np.array([common]), np.array([equal]), min_share, min_common)[0])


def find_groups(
    prices: npt.NDArray[np.int32],
    store_ids: Sequence[str],
    freshness: Sequence[float],
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    min_common: int = DEFAULT_MIN_COMMON,
    bands: int = DEFAULT_BANDS,
    band_size: int = DEFAULT_BAND_SIZE,
    seed: int = 0,
    keep_anchors: Collection[str] = (),
    group_sizes: Mapping[str, int] | None = None,
) -> GroupingResult:
    """Group one chain's stores: candidates from fingerprints, each confirmed against its anchor only.

    `freshness` ranks stores of equal coverage (larger is fresher, e.g. the POSIX time of the
    newest price); pass it coarsened (e.g. to the day) if `keep_anchors` should win among stores
    about as fresh. `group_sizes` gives a current anchor's group size (anchor included; others
    count 1), so that of two matching groups the larger absorbs the smaller. Ids in
    `keep_anchors` or `group_sizes` that are not in `store_ids` are ignored.

    An anchor is confirmed only against stores in no group yet, so however poor the fingerprints
    (say, bands of products every zone prices alike), at most stores x groups pairs are compared.
    """
    _check_rule(min_share, min_common)
    _check_input(prices, store_ids, freshness, group_sizes or {})
    kept = set(keep_anchors)
    coverage = np.count_nonzero(prices > 0, axis=1)
    rank = _anchor_rank(store_ids, coverage, freshness, kept, group_sizes or {})
    prints = fingerprint(prices, bands=bands, band_size=band_size, seed=seed)
    # A store with fewer priced products than min_common can match nobody: no need to compare it.
    comparable = coverage >= min_common
    placed = np.zeros(len(store_ids), dtype=np.bool_)
    groups = []
    compared = 0
    for anchor in rank:
        if placed[anchor]:
            continue
        placed[anchor] = True
        if not comparable[anchor]:
            groups.append(Group(store_ids[anchor]))
            continue
        candidates = prints.candidates(int(anchor))
        candidates = candidates[comparable[candidates] & ~placed[candidates]]
        compared += candidates.size
        common, equal = _counts_against(prices[anchor], prices, candidates)
        joined = candidates[_qualifies(common, equal, min_share, min_common)]
        placed[joined] = True
        groups.append(Group(store_ids[anchor], tuple(store_ids[row] for row in joined)))
    return GroupingResult(tuple(groups), compared, len(store_ids) * (len(store_ids) - 1) // 2)


def _check_input(
    prices: npt.NDArray[np.int32],
    store_ids: Sequence[str],
    freshness: Sequence[float],
    group_sizes: Mapping[str, int],
) -> None:
    """Reject a price matrix that does not fit its store ids and freshness, or is not cents."""
    stores = len(store_ids)
    if prices.ndim != 2 or prices.shape[0] != stores or len(freshness) != stores:
        raise ValueError(
            f"need one price row and one freshness per store: {stores} stores, prices of shape "
            f"{prices.shape}, {len(freshness)} freshness values"
        )
    if prices.dtype != np.int32:
        raise ValueError(f"prices must be int32 cents, not {prices.dtype}")
    if len(set(store_ids)) != stores:
        raise ValueError("store ids must be distinct")
    if prices.size and int(prices.min()) < 0:
        raise ValueError("prices must be cents >= 0 (0 meaning no fresh price)")
    if any(size < 1 for size in group_sizes.values()):
        raise ValueError("group sizes count the anchor, so they are at least 1")


def _anchor_rank(
    store_ids: Sequence[str],
    coverage: npt.NDArray[np.intp],
    freshness: Sequence[float],
    kept: set[str],
    group_sizes: Mapping[str, int],
) -> npt.NDArray[np.intp]:
    """Order the stores (rows) as anchors: larger group, more coverage, fresher, kept, then row order."""
    # np.lexsort sorts by its last key first, and negated keys put the largest first.
    return np.lexsort(
        (
            np.arange(len(store_ids)),
            -np.array([store in kept for store in store_ids], dtype=np.int8),
            -np.asarray(freshness, dtype=np.float64),
            -coverage,
            -np.array([group_sizes.get(store, 1) for store in store_ids], dtype=np.int64),
        )
    )


def _check_rule(min_share: float, min_common: int) -> None:
    """Reject a match rule that would match everything or nothing by accident."""
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], not {min_share}")
    if min_common < 1:
        raise ValueError(f"min_common must be at least 1, not {min_common}")


def _counts_against(
    anchor: npt.NDArray[np.int32], prices: npt.NDArray[np.int32], rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return (common, equal) counts of the anchor's price vector against each of the given rows."""
    # Only the anchor's priced products can be common, so only those columns are read.
    priced = np.flatnonzero(anchor > 0)
    target = anchor[priced]
    common = np.zeros(rows.size, dtype=np.int64)
    equal = np.zeros(rows.size, dtype=np.int64)
    for start in range(0, rows.size, _CONFIRM_BLOCK):
        block = prices[np.ix_(rows[start : start + _CONFIRM_BLOCK], priced)]
        common[start : start + _CONFIRM_BLOCK] = np.count_nonzero(block > 0, axis=1)
        # The target is > 0, so an equal price is a priced one: equal counts only common products.
        equal[start : start + _CONFIRM_BLOCK] = np.count_nonzero(block == target, axis=1)
    return common, equal


def _qualifies(
    common: npt.NDArray[np.int64], equal: npt.NDArray[np.int64], min_share: float, min_common: int
) -> npt.NDArray[np.bool_]:
    """Apply the match rule to arrays of (common, equal) counts."""
    # A division is correctly rounded, so 7 / 100 >= 0.07 holds; 7 >= 0.07 * 100 does not (7.000000000000001).
    return (common >= min_common) & (equal / np.maximum(common, 1) >= min_share)
