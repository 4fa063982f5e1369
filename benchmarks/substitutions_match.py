"""Benchmark: substitutes for the four real AU catalogues (about 16,000 products).

Measures on this machine, with the real model (all-MiniLM-L6-v2 on the CPU):
- a full rebuild with an empty embedding cache (parse, encode every distinct name, match all)
  and with a warm cache (what `pricestream substitutions rebuild` costs once names are known);
- the incremental cost of one new product (parse, encode its name, find its substitutes,
  recompute the lists of those it points to), p50 and p99 over products held out, and how many
  lists so kept up differ from a rebuild's (0: incremental equals a rebuild);
- recall on the hand-labelled Coles <-> Woolworths pairs (tests/data/substitutions).

    .venv/bin/python -m benchmarks.substitutions_match --held-out 300
"""

import argparse
import random
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console

from pricestream.matching_cli import scores_table
from scraper.domain.importers import read_rows
from substitutions.domain.catalogue import Catalogue, Description
from substitutions.domain.evaluation import evaluate
from substitutions.domain.matching import Policy
from substitutions.embeddings import Encoder, SentenceEncoder, Vectors
from substitutions.offline import match_lists, ranked_by_left, read_gold, read_products
from testsupport import report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "au-grocery-2023"
GOLD = ROOT / "tests" / "data" / "substitutions" / "coles_woolworths_gold.csv"
ACCEPTABLE = ROOT / "tests" / "data" / "substitutions" / "coles_woolworths_l3_acceptable.csv"
CHAINS = ("coles", "woolworths", "iga", "aldi")


class CachingEncoder:
    """Wrap an encoder with an in-memory cache, as the service's embeddings table does."""

    def __init__(self, encoder: Encoder) -> None:
        self.inner = encoder
        self.model_name = encoder.model_name
        self.dimensions = encoder.dimensions
        self.cache: dict[str, Vectors] = {}

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Encode the texts not cached yet, then answer from the cache."""
        missing = [text for text in dict.fromkeys(texts) if text not in self.cache]
        if missing:
            self.cache |= dict(zip(missing, self.inner.encode(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.vstack([self.cache[text] for text in texts])


def build(
    descriptions: Sequence[Description], encoder: Encoder, policy: Policy
) -> tuple[Catalogue, dict[str, float]]:
    """Parse, encode and match every product; return the catalogue and the seconds of each phase."""
    started = time.perf_counter()
    catalogue = Catalogue.learning(descriptions, dimensions=encoder.dimensions, policy=policy)
    products = [catalogue.parse(description) for description in descriptions]
    parsed = time.perf_counter()
    kinds = sorted({product.kind for product in products})
    vectors = dict(zip(kinds, encoder.encode(kinds), strict=True))
    catalogue.load(products, (vectors[product.kind] for product in products))
    encoded = time.perf_counter()
    catalogue.rebuild()
    matched = time.perf_counter()
    seconds = {
        "parse_s": parsed - started,
        "encode_s": encoded - parsed,
        "match_s": matched - encoded,
        "total_s": matched - started,
    }
    return catalogue, {key: round(value, 3) for key, value in seconds.items()}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--held-out", type=int, default=300, help="New products timed one by one")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-results/substitutions_match.json"))
    args = parser.parse_args()
    console = Console()
    if not DATA.is_dir():
        raise SystemExit(f"the real catalogues are not at {DATA}")

    files = {chain: read_products(DATA / f"{chain}.json", read_rows)[0] for chain in CHAINS}
    everything = [description for chain in CHAINS for description in files[chain]]
    policy = Policy()
    model_started = time.perf_counter()
    encoder = CachingEncoder(SentenceEncoder())
    model_s = time.perf_counter() - model_started
    console.print(f"{len(everything)} products from {', '.join(CHAINS)}; model loaded in {model_s:.1f} s")

    catalogue, cold = build(everything, encoder, policy)
    console.print(f"cold rebuild: {cold}")
    catalogue, warm = build(everything, encoder, policy)
    console.print(f"warm rebuild: {warm}")
    links = sum(len(rows) for rows in catalogue.lists.values())

    # New products: hold some out, hold the rest with their lists, then add them one by one.
    rng = random.Random(7)
    held_out = rng.sample(everything, args.held_out)
    chosen = {(d.chain, d.sku) for d in held_out}
    rest = [d for d in everything if (d.chain, d.sku) not in chosen]
    catalogue, _ = build(rest, encoder, policy)
    raw = encoder.inner
    timings = []
    for description in held_out:
        started = time.perf_counter()
        product = catalogue.parse(description)
        vector = raw.encode([product.kind])[0]
        catalogue.observe(product, vector)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    # Kept up product by product, every list must be what a rebuild of the same products gives.
    differing = len(catalogue.rebuild())
    console.print(f"incremental against a rebuild: {differing} of {len(catalogue)} lists differ")

    candidates = match_lists(files["coles"], files["woolworths"], encoder=encoder, policy=policy)
    scores = evaluate(read_gold(GOLD), ranked_by_left(candidates), k=args.k, acceptable=read_gold(ACCEPTABLE))
    console.print(scores_table(scores, k=args.k, title="coles -> woolworths against the labelled pairs"))

    figures: dict[str, object] = {
        "products": len(everything),
        "distinct_names_encoded": len(encoder.cache),
        "model_load_s": round(model_s, 2),
        "rebuild_cold_s": cold["total_s"],
        "rebuild_cold_encode_s": cold["encode_s"],
        "rebuild_cold_match_s": cold["match_s"],
        "rebuild_warm_s": warm["total_s"],
        "substitute_links": links,
        "incremental_products": len(timings),
        "incremental_p50_ms": round(timings[len(timings) // 2], 1),
        "incremental_p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1),
        "incremental_lists_differing_from_rebuild": differing,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    for score in scores:
        figures[f"gold_{score.level}_pairs"] = score.pairs
        figures[f"gold_{score.level}_precision"] = round(score.precision, 3)
        figures[f"gold_{score.level}_recall_at_1"] = round(score.recall_at_1, 3)
        figures[f"gold_{score.level}_recall_at_{args.k}"] = round(score.recall_at_k, 3)
        figures[f"gold_{score.level}_mrr"] = round(score.mrr, 3)
        if score.acceptable_at_1 is not None:
            figures[f"gold_{score.level}_any_acceptable_at_1"] = round(score.acceptable_at_1, 3)
    report(console, "substitutions on the four AU catalogues", figures, args.out)


if __name__ == "__main__":
    main()
