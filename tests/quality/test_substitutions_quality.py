"""Substitutes found with the real model: the simulated world's truth and hand-labelled real pairs."""

import os
from collections import defaultdict
from pathlib import Path

import pytest

from scraper.domain.importers import read_rows
from simulator.catalog import DEFAULT_CATEGORIES, builtin_catalog
from substitutions.domain.catalogue import Catalogue, Description
from substitutions.domain.evaluation import evaluate
from substitutions.domain.matching import Policy
from substitutions.embeddings import SentenceEncoder
from substitutions.offline import match_lists, ranked_by_left, read_gold, read_products
from tests.fakes.substitutions import list_of

pytestmark = pytest.mark.quality

ROOT = Path(__file__).resolve().parents[2]
AU = ROOT.parent / "shared" / "data" / "au-grocery-2023"
GOLD = ROOT / "tests" / "data" / "substitutions" / "coles_woolworths_gold.csv"
ACCEPTABLE = ROOT / "tests" / "data" / "substitutions" / "coles_woolworths_l3_acceptable.csv"
AUSTRIAN = ROOT / "tests" / "data" / "substitutions" / "heissepreise"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    """Load all-MiniLM-L6-v2 once for the module."""
    # On an xdist worker the other worker's stacks take the other core: torch's threads then
    # wait on each other, and the AU pairs took 4 times as long as alone.
    return SentenceEncoder(threads=1 if os.environ.get("PYTEST_XDIST_WORKER") else None)


@pytest.mark.parametrize("seed", [7, 23])
def test_world_equivalences_are_found_at_l1_and_l2(encoder: SentenceEncoder, seed: int) -> None:
    catalog = builtin_catalog(seed, 3, 240, DEFAULT_CATEGORIES)
    descriptions = [
        Description(c.slug, p.sku, p.name, p.brand, p.size, p.category, p.barcode)
        for c in catalog.chains
        for p in c.products
    ]
    catalogue = Catalogue.learning(descriptions, dimensions=encoder.dimensions, policy=Policy())
    products = [catalogue.parse(d) for d in descriptions]
    catalogue.load(products, encoder.encode([p.kind for p in products]))
    catalogue.rebuild()

    truth: dict[tuple[str, str, str, str], str] = {}
    for e in catalog.equivalences:
        truth[(e.chain_a, e.sku_a, e.chain_b, e.sku_b)] = e.level
        truth[(e.chain_b, e.sku_b, e.chain_a, e.sku_a)] = e.level
    identical = correct = 0
    same_item: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for d in descriptions:
        for row in list_of(catalogue, d.chain, d.sku) or []:
            if row.level == "L1":
                identical += 1
                # The world calls a pair L2 when one listing carries an in-store barcode, even
                # under an equal name; the item is the same either way.
                correct += truth.get((d.chain, d.sku, row.chain, row.sku)) in ("L1", "L2")
            if row.level in ("L1", "L2"):
                same_item[(d.chain, d.sku, row.chain)].append(row.sku)
    pairs = [key for key, level in truth.items() if level in ("L1", "L2")]
    first = sum(same_item.get((a, sku_a, b), [None])[0] == sku_b for a, sku_a, b, sku_b in pairs)
    precision, recall = correct / identical, first / len(pairs)
    print(
        f"seed {seed}: L1 precision {correct}/{identical} = {precision:.3f}, "
        f"L1+L2 recall@1 {first}/{len(pairs)} = {recall:.3f}"
    )
    assert precision >= 0.99
    assert recall >= 0.95


@pytest.mark.skipif(not AU.is_dir(), reason="the real au-grocery-2023 catalogues are not beside the project")
def test_labelled_coles_woolworths_pairs_are_recalled(encoder: SentenceEncoder) -> None:
    coles, _ = read_products(AU / "coles.json", read_rows)
    woolworths, _ = read_products(AU / "woolworths.json", read_rows)
    candidates = match_lists(coles, woolworths, encoder=encoder, policy=Policy())
    ranked, acceptable = ranked_by_left(candidates), read_gold(ACCEPTABLE)
    scores = {s.level: s for s in evaluate(read_gold(GOLD), ranked, k=5, acceptable=acceptable)}
    for s in scores.values():
        print(
            f"{s.level}: {s.pairs} pairs, precision {s.precision:.3f}, recall@1 {s.recall_at_1:.3f}, "
            f"recall@5 {s.recall_at_k:.3f}, MRR {s.mrr:.3f}, any acceptable@1 {s.acceptable_at_1:.3f}"
        )
    assert scores["L1"].pairs + scores["L3"].pairs >= 300
    assert scores["L1"].precision >= 0.95
    assert scores["L1"].recall_at_1 >= AU_L1_RECALL_AT_1
    assert scores["L3"].recall_at_1 >= AU_L3_RECALL_AT_1
    assert scores["L3"].recall_at_k >= AU_L3_RECALL_AT_5
    # The first alternative is the labelled one or another judged as good (the README says how).
    assert (scores["L3"].acceptable_at_1 or 0.0) >= AU_L3_ANY_ACCEPTABLE_AT_1


def test_labelled_austrian_pairs_are_recalled_and_house_brands_kept_apart(encoder: SentenceEncoder) -> None:
    left, _ = read_products(AUSTRIAN / "hofer_mpreis.csv", read_rows)
    unimarkt, _ = read_products(AUSTRIAN / "unimarkt.csv", read_rows)
    candidates = match_lists(left, unimarkt, encoder=encoder, policy=Policy())
    scores = {s.level: s for s in evaluate(read_gold(AUSTRIAN / "gold.csv"), ranked_by_left(candidates), k=5)}
    for s in scores.values():
        print(
            f"{s.level}: {s.pairs} pairs, recall@1 {s.recall_at_1:.3f}, recall@5 {s.recall_at_k:.3f}, "
            f"MRR {s.mrr:.3f}, never offered {s.never_offered:.3f}"
        )
    assert scores["L1"].recall_at_1 >= DE_L1_RECALL_AT_1
    # House-brand equivalents must come as another brand's (L3), never as the same item.
    assert scores["L3"].recall_at_1 >= DE_L3_RECALL_AT_1
    never_offered = sum(s.never_offered * s.pairs for s in scores.values()) / sum(
        s.pairs for s in scores.values()
    )
    print(f"never offered: {never_offered:.3f} of all pairs")
    assert never_offered <= DE_NEVER_OFFERED


# Floors: the figures measured (docs/benchmarks.md) less a small margin.
AU_L1_RECALL_AT_1 = 0.965
AU_L3_RECALL_AT_1 = 0.71
AU_L3_RECALL_AT_5 = 0.93
AU_L3_ANY_ACCEPTABLE_AT_1 = 0.81
DE_L1_RECALL_AT_1 = 0.98
DE_L3_RECALL_AT_1 = 0.82
DE_NEVER_OFFERED = 0.01
