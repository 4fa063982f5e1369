"""Score ranked substitutes against gold pairs: precision, recall@1, recall@k, MRR per level, and
the share of answers never offered at all.

Where a gold pair names one answer among several equally good ones, further acceptable answers
(judged apart, and never replacing the gold) give a second recall@1: the first candidate is the
gold answer or one of them.

A gold pair says which right-hand product is the answer for a left-hand one at a level.
Same-item levels (L1, L2) are looked up in the ranked L1+L2 list, alternatives (L3, L4)
in the ranked L3+L4 list: finding a pair at the wrong kind of level does not count.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from substitutions.domain.matching import Level

_TIERS: dict[Level, tuple[Level, ...]] = {
    "L1": ("L1", "L2"),
    "L2": ("L1", "L2"),
    "L3": ("L3", "L4"),
    "L4": ("L3", "L4"),
}


@dataclass(frozen=True, slots=True)
class GoldPair:
    """One labelled answer: for `left`, `right` is a substitute at `level`."""

    left: str
    right: str
    level: Level


@dataclass(frozen=True, slots=True)
class Ranked:
    """One candidate of a left-hand product, as the matcher ranked it."""

    right: str
    level: Level
    score: float


@dataclass(frozen=True, slots=True)
class LevelScore:
    """How well one level's gold pairs were found."""

    level: Level
    pairs: int
    precision: float
    recall_at_1: float
    recall_at_k: float
    mrr: float
    never_offered: float
    """The share of pairs whose answer is not among the candidates at any level."""
    acceptable_at_1: float | None = None
    """The share whose first candidate is the answer or a further acceptable one (None: none given)."""


def evaluate(
    gold: Iterable[GoldPair],
    ranked: Mapping[str, Sequence[Ranked]],
    *,
    k: int,
    acceptable: Iterable[GoldPair] | None = None,
) -> list[LevelScore]:
    """Score the ranked candidates of each left product against the gold pairs, level by level.

    `acceptable`: further answers as good as the gold's for a left product and level, for
    `acceptable_at_1`.
    """
    by_level: dict[Level, list[GoldPair]] = defaultdict(list)
    for pair in gold:
        by_level[pair.level].append(pair)
    further: dict[tuple[str, Level], set[str]] = defaultdict(set)
    for pair in acceptable or ():
        further[(pair.left, pair.level)].add(pair.right)
    scores = []
    for level in sorted(by_level):
        pairs = by_level[level]
        tiers = [_tier(ranked.get(pair.left, ()), level) for pair in pairs]
        ranks = [_rank(pair, tier) for pair, tier in zip(pairs, tiers, strict=True)]
        answered = [rank for rank, tier in zip(ranks, tiers, strict=True) if tier]
        scores.append(
            LevelScore(
                level=level,
                pairs=len(pairs),
                precision=sum(rank == 1 for rank in answered) / len(answered) if answered else 0.0,
                recall_at_1=sum(rank == 1 for rank in ranks) / len(pairs),
                recall_at_k=sum(rank is not None and rank <= k for rank in ranks) / len(pairs),
                mrr=sum(1 / rank for rank in ranks if rank is not None) / len(pairs),
                never_offered=sum(not _offered(pair, ranked.get(pair.left, ())) for pair in pairs)
                / len(pairs),
                acceptable_at_1=None
                if acceptable is None
                else sum(
                    bool(tier) and tier[0].right in {pair.right} | further[(pair.left, pair.level)]
                    for pair, tier in zip(pairs, tiers, strict=True)
                )
                / len(pairs),
            )
        )
    return scores


def _tier(candidates: Sequence[Ranked], level: Level) -> list[Ranked]:
    """Return the candidates at the levels where a gold pair of this level is looked up, best first."""
    tier = _TIERS[level]
    kept = [candidate for candidate in candidates if candidate.level in tier]
    return sorted(kept, key=lambda candidate: (tier.index(candidate.level), -candidate.score))


def _rank(pair: GoldPair, tier: Sequence[Ranked]) -> int | None:
    """Return the 1-based rank of the gold answer among its tier's candidates, or None if missing."""
    for rank, candidate in enumerate(tier, start=1):
        if candidate.right == pair.right:
            return rank
    return None


def _offered(pair: GoldPair, candidates: Sequence[Ranked]) -> bool:
    """Tell whether the gold answer is among the candidates, at whatever level."""
    return any(candidate.right == pair.right for candidate in candidates)
