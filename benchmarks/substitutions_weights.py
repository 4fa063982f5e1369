"""Learn how L3 weighs its readable features, from labelled pairs, and report train and test.

L3 ranks another brand's products by one score: the blend of two name similarities less
three penalties,

    (1 - letters) * meaning + letters * trigrams - size * doublings - variant * words - tier * other,

`meaning` the embeddings' cosine, `trigrams` the character trigrams' cosine, `doublings` how
many times the larger size doubles the smaller, `words` the variant words (light, organic) on
one side only, `other` 1 where one is its chain's own brand and the other is not. The weights
come from a conditional logistic regression (a softmax over each pair's candidates): for each
labelled L3 pair of the TRAIN split, the labelled partner against every other candidate L3
could offer (the shortlist's products of another brand and comparable size). The coefficients,
divided by the two similarities' sum, are the weights: the score keeps the blend's scale (its
thresholds mean what they did) and stays below the similarity that shortlists a candidate (so
incremental lists still equal a rebuild); a penalty that came out negative is kept at 0.

Pairs: the AU Coles -> Woolworths gold and the Austrian Hofer, MPreis -> Unimarkt gold
(tests/data/substitutions); a left product is in TEST when crc32 of its set and sku is 0 mod 3.
Figures are recall@1 / recall@5 / MRR through the whole matcher (`match_lists`), before (the
weights once set by hand, `HAND`) and after (the learned ones), per set, level and split.

    .venv/bin/python -m benchmarks.substitutions_weights          # learn and report
    .venv/bin/python -m benchmarks.substitutions_weights --write  # and write weights.py
"""

import argparse
import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from benchmarks.substitutions_match import CachingEncoder
from scraper.domain.importers import read_rows
from substitutions.domain.catalogue import Description
from substitutions.domain.evaluation import GoldPair, LevelScore, evaluate
from substitutions.domain.matching import L4_DOUBLINGS, Policy
from substitutions.domain.weights import PER_MISSING_WORD
from substitutions.embeddings import Encoder, SentenceEncoder
from substitutions.offline import build_catalogue, match_lists, ranked_by_left, read_gold, read_products

ROOT = Path(__file__).resolve().parents[1]
AU = ROOT.parent / "shared" / "data" / "au-grocery-2023"
PAIRS = ROOT / "tests" / "data" / "substitutions"
WEIGHTS = ROOT / "services" / "substitutions" / "src" / "substitutions" / "domain" / "weights.py"


@dataclass(frozen=True, slots=True)
class Weights:
    """The three weights of the L3 score, as the policy names them."""

    ngram_weight: float
    l3_size_weight: float
    l3_variant_penalty: float
    l3_tier_penalty: float

    def of(self, policy: Policy) -> Policy:
        """Return the policy with these weights."""
        return dataclasses.replace(
            policy,
            ngram_weight=self.ngram_weight,
            l3_size_weight=self.l3_size_weight,
            l3_variant_penalty=self.l3_variant_penalty,
            l3_tier_penalty=self.l3_tier_penalty,
        )


HAND = Weights(ngram_weight=0.4, l3_size_weight=0.3, l3_variant_penalty=0.1, l3_tier_penalty=0.0)
"""The weights set by hand before they were learned: the "before" of every figure."""
FEATURES = ("meaning", "letters", "doublings", "variant", "tier", "missing")
"""The features in the order of the coefficients; the last four count against a candidate (the
query's distinguishing words a candidate lacks at the policy's weight, not learned here)."""


@dataclass(frozen=True, slots=True)
class LabelledSet:
    """Two product lists and their gold pairs."""

    name: str
    left: list[Description]
    right: list[Description]
    gold: list[GoldPair]
    acceptable: list[GoldPair] | None = None
    """Further answers as good as the gold's (AU L3), for recall@1 of any acceptable one."""

    def split(self, part: str) -> list[GoldPair]:
        """Return the gold pairs of a split: `train`, `test` or `all`."""
        if part == "all":
            return self.gold
        return [pair for pair in self.gold if in_test(self.name, pair.left) == (part == "test")]


def in_test(name: str, left_sku: str) -> bool:
    """Tell whether a left product's pairs are held out: a third of the products, the same every run."""
    return zlib.crc32(f"{name}:{left_sku}".encode()) % 3 == 0


def labelled_sets() -> list[LabelledSet]:
    """Read the AU and the Austrian sets."""
    austrian = PAIRS / "heissepreise"
    files = [
        ("AU", AU / "coles.json", AU / "woolworths.json", PAIRS / "coles_woolworths_gold.csv"),
        ("Austrian", austrian / "hofer_mpreis.csv", austrian / "unimarkt.csv", austrian / "gold.csv"),
    ]
    sets = [
        LabelledSet(
            name, read_products(left, read_rows)[0], read_products(right, read_rows)[0], read_gold(gold)
        )
        for name, left, right, gold in files
    ]
    further = read_gold(PAIRS / "coles_woolworths_l3_acceptable.csv")
    return [dataclasses.replace(sets[0], acceptable=further), *sets[1:]]


@dataclass(frozen=True, slots=True)
class Choice:
    """One labelled L3 pair as L3 sees it: its candidates' features (a row each) and which is the partner."""

    features: npt.NDArray[np.float64]
    partner: int
    test: bool


def choices(labelled: LabelledSet, encoder: Encoder, policy: Policy) -> tuple[list[Choice], int]:
    """Return every L3 pair's choice, and how many pairs L3 cannot offer at all (left out)."""
    catalogue = build_catalogue(labelled.left, labelled.right, encoder=encoder, policy=policy)
    index = catalogue.index
    right_chain = labelled.right[0].chain
    right_chains = np.array([product.chain == right_chain for product in index.products])
    left_at = {product.sku: at for at, product in enumerate(index.products) if not right_chains[at]}
    right_at = {product.sku: at for at, product in enumerate(index.products) if right_chains[at]}
    found, missing = [], 0
    for pair in labelled.gold:
        if pair.level != "L3":
            continue
        query, partner = left_at[pair.left], right_at[pair.right]
        # The rivals are what L3 itself weighs: the shortlist, less the query's same items (L1, L2).
        similarity = np.where(right_chains, index.vectors @ index.vectors[query], -np.inf)
        shortlist = np.argsort(-similarity, kind="stable")[: policy.shortlist]
        same = {m.other for m in index.find([query], policy, within=right_chain)[query] if m.level < "L3"}
        others = np.array([at for at in shortlist if at not in same], dtype=np.int64)
        features = index.l3_features(query, others)
        possible = (features["eligible"] > 0) & (features["doublings"] <= np.log2(policy.l3_max_size_ratio))
        candidates = others[possible]
        if partner not in candidates:
            missing += 1
            continue
        rows = np.column_stack([features[name] for name in FEATURES])[possible]
        at = int(np.flatnonzero(candidates == partner)[0])
        found.append(Choice(rows, at, in_test(labelled.name, pair.left)))
    return found, missing


def ranks(found: Sequence[Choice], weights: Weights, policy: Policy) -> npt.NDArray[np.float64]:
    """Return the partner's rank among each pair's candidates under these weights, as the matcher ranks.

    Below the L3 minimum a candidate falls to L4, after every L3 one, ranked by the blend less
    L4's size weight; below L4's minimum it is not offered (rank inf). Ties count against the partner.
    """
    w = weights
    blend = np.array([1 - w.ngram_weight, w.ngram_weight, 0.0, 0.0, 0.0, 0.0])
    missing = -policy.l3_missing_word_penalty
    penalties = np.array([0.0, 0.0, -w.l3_size_weight, -w.l3_variant_penalty, -w.l3_tier_penalty, missing])
    result = []
    for choice in found:
        alike = choice.features @ blend
        score = alike + choice.features @ penalties
        related = alike - policy.l4_size_weight * np.minimum(choice.features[:, 2], L4_DOUBLINGS)
        ordered = np.where(
            score >= policy.l3_min_similarity,
            score,
            np.where(related >= policy.l4_min_similarity, related - 10.0, -np.inf),
        )
        own = ordered[choice.partner]
        result.append(float(np.sum(ordered >= own - 1e-9)) if np.isfinite(own) else np.inf)
    return np.array(result, dtype=np.float64)


def learn(found: Sequence[Choice], policy: Policy) -> Weights:
    """Return the weights of the grid that rank the TRAIN partners best: highest MRR, then recall@1.

    A small search over four readable numbers, each on a grid wide enough to hold the weights
    set by hand; the test pairs play no part.
    """
    train = [choice for choice in found if not choice.test]
    best: tuple[float, float, Weights] | None = None
    for letters in np.arange(0.2, 0.71, 0.05):
        for size in np.arange(0.0, 0.61, 0.05):
            for variant in np.arange(0.0, 0.31, 0.05):
                for tier in np.arange(0.0, 0.21, 0.025):
                    weights = Weights(*(round(float(v), 3) for v in (letters, size, variant, tier)))
                    ranked = ranks(train, weights, policy)
                    key = (float(np.mean(1 / ranked)), float(np.mean(ranked == 1)), weights)
                    if best is None or key[:2] > best[:2]:
                        best = key
    assert best is not None
    return best[2]


def scores(labelled: LabelledSet, encoder: Encoder, policy: Policy) -> dict[str, list[LevelScore]]:
    """Match a set with a policy and score each split."""
    candidates = ranked_by_left(match_lists(labelled.left, labelled.right, encoder=encoder, policy=policy))
    return {
        part: evaluate(labelled.split(part), candidates, k=5, acceptable=labelled.acceptable)
        for part in ("train", "test", "all")
    }


def write(weights: Weights) -> None:
    """Write the learned weights as the constants the policy takes."""
    WEIGHTS.write_text(
        '"""L3\'s weights, learned from labelled pairs (train split).\n\n'
        'Written by `python -m benchmarks.substitutions_weights --write`: edit them there, not here.\n"""\n\n'
        f"NGRAM_WEIGHT = {weights.ngram_weight}\n"
        '"""The character trigrams\' share of how alike two names are; the embeddings\' is the rest."""\n'
        f"SIZE_PER_DOUBLING = {weights.l3_size_weight}\n"
        '"""What L3 takes off a candidate per doubling of size between the two."""\n'
        f"PER_VARIANT_WORD = {weights.l3_variant_penalty}\n"
        '"""What L3 takes off a candidate per variant word (light, organic) on one side only."""\n'
        f"OTHER_TIER = {weights.l3_tier_penalty}\n"
        '"""What L3 takes off a candidate of another tier: a maker\'s brand for a house brand, or the other'
        ' way."""\n'
        f"PER_MISSING_WORD = {PER_MISSING_WORD}\n"
        '"""What L3 takes off a candidate per word telling items apart (penne, farfalle) the query has, it'
        ' not."""\n'
    )


def main() -> None:
    """Learn the weights on the train split and print every set's figures before and after."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="write the learned weights to weights.py")
    args = parser.parse_args()
    console = Console()
    encoder = CachingEncoder(SentenceEncoder())
    sets = labelled_sets()
    before = HAND.of(Policy())
    found, missing = [], 0
    for labelled in sets:
        chosen, lost = choices(labelled, encoder, before)
        found += chosen
        missing += lost
    learned = learn(found, before)
    train = sum(not choice.test for choice in found)
    console.print(
        f"learned on {train} train L3 pairs ({missing} of all not among L3's candidates): {learned}; "
        f"by hand: {HAND}"
    )
    for name, testing in (("train", False), ("test", True)):
        held = [choice for choice in found if choice.test == testing]
        for label, weights in (("by hand", HAND), ("learned", learned)):
            ranked = ranks(held, weights, before)
            console.print(
                f"  L3 candidates, {name} ({len(held)}), {label}: recall@1 {np.mean(ranked == 1):.3f}, "
                f"MRR {np.mean(1 / ranked):.3f}"
            )
    after = learned.of(before)
    table = Table(title="recall@1 / recall@5 / MRR (never offered), before -> after")
    for column in ("set", "level", "split", "pairs", "before", "after"):
        table.add_column(column)
    for labelled in sets:
        old, new = scores(labelled, encoder, before), scores(labelled, encoder, after)
        for part in ("train", "test", "all"):
            for a, b in zip(old[part], new[part], strict=True):
                table.add_row(labelled.name, a.level, part, str(a.pairs), _figures(a), _figures(b))
    console.print(table)
    if args.write:
        write(learned)
        console.print(f"written to {WEIGHTS.relative_to(ROOT)}")


def _figures(score: LevelScore) -> str:
    """Write one level's figures compactly, with recall@1 of any acceptable answer where judged."""
    figures = f"{score.recall_at_1:.3f} / {score.recall_at_k:.3f} / {score.mrr:.3f}"
    figures += f" ({score.never_offered:.3f})"
    if score.acceptable_at_1 is None:
        return figures
    return f"{figures}, any acceptable {score.acceptable_at_1:.3f}"


if __name__ == "__main__":
    main()
