"""Benchmark: the pure grouping algorithm on one large synthetic chain of zone-priced stores.

Builds a chain whose stores charge their pricing zone's prices (zones of unequal sizes, each
with its own price level and specials), with a share of store exceptions and of missing prices,
then times the fingerprints and a full regroup and scores the groups against the zones.
`--national-share` prices a share of the products the same in every zone, as real chains do:
fingerprints then tell zones apart less well and more pairs are confirmed exactly.

    .venv/bin/python -m benchmarks.grouping_algorithm --stores 3000 --products 20000 --zones 60
"""

import argparse
import resource
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console

from grouping.domain.fingerprints import fingerprint
from grouping.domain.grouping import find_groups
from simulator.evaluation import adjusted_rand_index, merges_distinct
from testsupport import report

ZONE_FACTOR_RANGE = (0.90, 1.15)
SPECIAL_SHARE = 0.10
SPECIAL_CUT_RANGE = (0.15, 0.40)
EXCEPTION_CENTS_RANGE = (10, 60)
# Rows drawn at a time when blanking prices, so the random numbers never take a matrix's worth of memory.
BLANK_BLOCK_ROWS = 256


@dataclass(frozen=True, slots=True)
class Chain:
    """Hold a synthetic chain: its price matrix, store ids, freshness and each store's true zone."""

    prices: npt.NDArray[np.int32]
    store_ids: list[str]
    freshness: list[float]
    zones: list[str]


def synthetic_chain(
    *,
    stores: int,
    products: int,
    zones: int,
    national_share: float,
    exception_share: float,
    missing_share: float,
    seed: int,
) -> Chain:
    """Build a chain whose stores charge their zone's prices, with exceptions and missing prices."""
    rng = np.random.default_rng(seed)
    # Log-uniform base prices from $0.80 to $40, like a grocery catalog's spread.
    base = np.exp(rng.uniform(np.log(80), np.log(4000), products))
    low, high = ZONE_FACTOR_RANGE
    factors = rng.permutation(np.linspace(low, high, zones))
    zone_prices = np.rint(base * factors[:, np.newaxis])
    on_special = rng.random((zones, products)) < SPECIAL_SHARE
    cuts = rng.uniform(*SPECIAL_CUT_RANGE, (zones, products))
    zone_prices = np.where(on_special, np.floor(zone_prices * (1 - cuts)), zone_prices)
    zone_prices = np.maximum(zone_prices, 1).astype(np.int32)
    national = rng.random(products) < national_share
    zone_prices[:, national] = zone_prices[0, national]

    # Zone k weighs zones - k: a big metro zone down to a small remote one, each with at least a store.
    weights = np.arange(zones, 0, -1, dtype=np.float64)
    sizes = 1 + np.floor((stores - zones) * weights / weights.sum()).astype(np.int64)
    sizes[: stores - int(sizes.sum())] += 1
    zone_of = rng.permutation(np.repeat(np.arange(zones), sizes))
    prices = zone_prices[zone_of]

    exceptions = rng.integers(0, prices.size, round(prices.size * exception_share))
    cents = rng.integers(EXCEPTION_CENTS_RANGE[0], EXCEPTION_CENTS_RANGE[1] + 1, exceptions.size)
    flat = prices.reshape(-1)
    flat[exceptions] = np.maximum(flat[exceptions] + rng.choice([-1, 1], exceptions.size) * cents, 1)
    for start in range(0, stores, BLANK_BLOCK_ROWS):
        block = prices[start : start + BLANK_BLOCK_ROWS]
        block[rng.random(block.shape, dtype=np.float32) < missing_share] = 0

    return Chain(
        prices=prices,
        store_ids=[f"s{row:05d}" for row in range(stores)],
        freshness=list(1.7e9 + rng.random(stores) * 86_400),
        zones=[f"z{zone:03d}" for zone in zone_of],
    )


def main() -> None:
    """Build the chain, group it, and print (and save) the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=3000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--zones", type=int, default=60)
    parser.add_argument("--national-share", type=float, default=0.0)
    parser.add_argument("--exception-share", type=float, default=0.005)
    parser.add_argument("--missing-share", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-results/grouping_algorithm.json"))
    args = parser.parse_args()
    if not 1 <= args.zones <= args.stores:
        parser.error("need 1 <= zones <= stores")
    console = Console()

    started = time.perf_counter()
    with console.status("building the chain..."):
        chain = synthetic_chain(
            stores=args.stores,
            products=args.products,
            zones=args.zones,
            national_share=args.national_share,
            exception_share=args.exception_share,
            missing_share=args.missing_share,
            seed=args.seed,
        )
    built = time.perf_counter()
    with console.status("fingerprinting..."):
        fingerprint(chain.prices)
    fingerprinted = time.perf_counter()
    with console.status("grouping..."):
        # Traced from here, the peak is what grouping adds on top of the price matrix.
        tracemalloc.start()
        grouped_from = time.perf_counter()
        result = find_groups(chain.prices, chain.store_ids, chain.freshness)
        grouped = time.perf_counter()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    anchor_of = result.anchor_of()
    truth = dict(zip(chain.store_ids, chain.zones, strict=True))
    figures = {
        "stores": args.stores,
        "products": args.products,
        "zones": args.zones,
        "national_share": args.national_share,
        "exception_share": args.exception_share,
        "missing_share": args.missing_share,
        "matrix_mib": round(chain.prices.nbytes / 2**20, 1),
        "seconds_to_build_matrix": round(built - started, 2),
        "seconds_to_fingerprint": round(fingerprinted - built, 2),
        "seconds_to_regroup": round(grouped - grouped_from, 2),
        "groups": len(result.groups),
        "pairs_compared": result.pairs_compared,
        "pairs_possible": result.pairs_possible,
        "compared_share": f"{result.compared_share:.3%}",
        "adjusted_rand_index": round(
            adjusted_rand_index(chain.zones, [anchor_of[s] for s in chain.store_ids]), 4
        ),
        "merges_distinct_zones": merges_distinct(truth, [g.stores for g in result.groups]),
        "grouping_peak_mib_traced": round(traced_peak / 2**20, 1),
        # ru_maxrss is in KiB on Linux: the whole process, price matrix and interpreter included.
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1),
    }
    report(
        console,
        "grouping algorithm (one chain, fingerprints + exact confirmation against anchors)",
        figures,
        args.out,
    )


if __name__ == "__main__":
    main()
