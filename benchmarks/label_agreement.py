"""How often two further judges agree with the AU L3 gold, and how often the matcher does.

The L3 gold names one Woolworths equivalent per Coles product, chosen by hand from the
word-overlap sheets (`benchmarks.label_sheets`). Two further judges labelled the same 191
products blind, each from the sheets' blocks alone (`label_sheets OUT --l3 GOLD.csv`: no mark
of the labelled answer, no matcher output): `coles_woolworths_l3_second_opinions.csv`. Their
agreement with the gold and with each other says how far the gold is one judge's choice among
equals, and so what recall@1 a careful reader reaches. The matcher's first alternative is
compared the same way, once over everything it ranks and once over the products the sheets
showed only (as a judge chose among them).

    .venv/bin/pricestream match ../shared/data/au-grocery-2023/coles.json \\
        ../shared/data/au-grocery-2023/woolworths.json --out matches.csv
    .venv/bin/python -m benchmarks.label_agreement matches.csv
"""

import argparse
import csv
import zlib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.label_sheets import candidates, products, shown

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "substitutions"
Answers = Mapping[str, str]
"""One answer per Coles sku: a Woolworths sku, or "" where none fits."""


def gold_l3() -> dict[str, str]:
    """Read the labelled L3 answer of each Coles product."""
    with (PAIRS / "coles_woolworths_gold.csv").open(newline="") as handle:
        return {
            row["coles_sku"]: row["woolworths_sku"] for row in csv.DictReader(handle) if row["level"] == "L3"
        }


def opinions() -> dict[str, dict[str, str]]:
    """Read each further judge's answers."""
    judges: dict[str, dict[str, str]] = defaultdict(dict)
    with (PAIRS / "coles_woolworths_l3_second_opinions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            judges[f"judge {row['judge']}"][row["coles_sku"]] = row["woolworths_sku"]
    return dict(judges)


def acceptable() -> dict[str, set[str]]:
    """Read the further answers judged as good as the gold's."""
    further: dict[str, set[str]] = defaultdict(set)
    with (PAIRS / "coles_woolworths_l3_acceptable.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            further[row["coles_sku"]].add(row["woolworths_sku"])
    return further


def alternatives(matches: Path) -> dict[str, list[str]]:
    """Read a `pricestream match --out` file: each left product's L3 and L4 answers, best first."""
    ranked: dict[str, list[str]] = defaultdict(list)
    with matches.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["level"] in ("L3", "L4"):
                ranked[row["left_sku"]].append(row["right_sku"])
    return ranked


def first(ranked: Mapping[str, list[str]], among: Mapping[str, set[str]] | None = None) -> dict[str, str]:
    """Return each product's first answer, or its first among the skus given for it."""
    return {
        sku: next((s for s in answers if among is None or s in among.get(sku, set())), "")
        for sku, answers in ranked.items()
    }


def in_test(sku: str) -> bool:
    """Tell whether a Coles product is in the TEST split of `benchmarks.substitutions_weights`."""
    return zlib.crc32(f"AU:{sku}".encode()) % 3 == 0


def agreement(a: Answers, b: Answers, skus: list[str]) -> str:
    """Count the products both answer alike (an empty answer agrees with nothing)."""
    same = sum(1 for sku in skus if a.get(sku) and a.get(sku) == b.get(sku))
    return f"{same}/{len(skus)} = {same / len(skus):.3f}"


def main() -> None:
    """Print each pair of judges' agreement, all products and per split."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "matches", type=Path, nargs="?", help="a `pricestream match --out` file of coles -> woolworths"
    )
    args = parser.parse_args()
    gold = gold_l3()
    judges: dict[str, Answers] = {"gold": gold, **opinions()}
    if args.matches:
        coles, right = products("coles"), candidates(products("woolworths"))
        sheets = {sku: set(shown(coles[sku], right)) for sku in gold}
        ranked = alternatives(args.matches)
        judges["matcher"] = first(ranked)
        judges["matcher, among the sheet's"] = first(ranked, sheets)
    splits = {
        "all": sorted(gold),
        "train": sorted(sku for sku in gold if not in_test(sku)),
        "test": sorted(sku for sku in gold if in_test(sku)),
    }
    table = Table(title="AU L3: products answered alike")
    for column in ("answers", "against", *splits):
        table.add_column(column, justify="right" if column in splits else "left")
    names = list(judges)
    for at, name in enumerate(names):
        for other in names[:at]:
            table.add_row(
                name, other, *(agreement(judges[name], judges[other], skus) for skus in splits.values())
            )
    further = acceptable()
    good = {sku: {answer, *further.get(sku, set())} for sku, answer in gold.items()}
    for name in names[1:]:
        cells = []
        for skus in splits.values():
            hits = sum(1 for sku in skus if judges[name].get(sku) in good[sku])
            cells.append(f"{hits}/{len(skus)} = {hits / len(skus):.3f}")
        table.add_row(name, "gold or acceptable", *cells)
    Console().print(table)


if __name__ == "__main__":
    main()
