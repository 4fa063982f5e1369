"""Print labelling sheets for Coles <-> Woolworths pairs: `python -m benchmarks.label_sheets OUT_DIR`.

The sheets are how the gold pairs in tests/data/substitutions were made: each lists a
random Coles product and the Woolworths products that share the most words with it
(plain word overlap, not the matcher under test), and a person reads them and writes
down which one is the same item (L1) and which is another brand's equivalent (L3).

`--l3 GOLD.csv` prints instead the blocks of the gold's L3 products, unmarked, as the second
opinions on the L3 gold were judged from (see `benchmarks.label_agreement`).
"""

import argparse
import csv
import random
import re
from pathlib import Path

from scraper.domain.importers import read_rows

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "au-grocery-2023"
_WORD = re.compile(r"[a-z0-9]+")
CANDIDATES = 12
"""How many Woolworths products a block shows at most: half by brand and name, half by name alone."""

Products = dict[str, dict[str, str]]


def products(chain: str) -> Products:
    """Read one chain's file into rows by sku, first row wins."""
    path = DATA / f"{chain}.json"
    found: Products = {}
    for row in read_rows(path.name, path.read_bytes()):
        if "sku" in row and "name" in row:
            found.setdefault(str(row["sku"]), row)
    return found


def _words(row: dict[str, str], *, with_brand: bool) -> set[str]:
    """Return the lower-cased words of a product's brand and name."""
    text = f"{row.get('brand') or ''} {row['name']}" if with_brand else row["name"]
    return set(_WORD.findall(text.lower()))


def _line(sku: str, row: dict[str, str]) -> str:
    """Describe one product on one line."""
    size = row.get("size") or f"qty {row.get('quantity')}"
    return f"{sku:>8} | {row.get('brand') or '-'} | {row['name']} | {size} | ${row.get('price')}"


Candidates = list[tuple[str, set[str]]]
"""Each Woolworths product's sku and words, brand included: what the blocks rank."""


def candidates(woolworths: Products) -> Candidates:
    """Return the words of every Woolworths product, read once for all the blocks."""
    return [(sku, _words(row, with_brand=True)) for sku, row in woolworths.items()]


def shown(row: dict[str, str], right: Candidates, *, shown_at_most: int = CANDIDATES) -> list[str]:
    """Return the Woolworths skus a block shows for a Coles product: most words in common first."""
    words = _words(row, with_brand=True)
    plain = _words(row, with_brand=False)
    by_all = sorted(right, key=lambda item: -len(words & item[1]) / len(words | item[1]))
    by_name = sorted(right, key=lambda item: -len(plain & item[1]) / len(plain | item[1]))
    half = shown_at_most // 2
    return list(dict.fromkeys(s for s, _ in by_all[:half] + by_name[:half]))


def block(sku: str, coles: Products, woolworths: Products, right: Candidates) -> str:
    """Write one Coles product's block: the product, then the Woolworths products shown for it."""
    lines = ["COLES " + _line(sku, coles[sku])]
    lines += ["   W  " + _line(s, woolworths[s]) for s in shown(coles[sku], right)]
    return "\n".join(lines)


def main(out_dir: Path, *, sheets: int = 4, per_sheet: int = 150) -> None:
    """Write the sheets: per Coles product, the Woolworths products with the most words in common."""
    coles, woolworths = products("coles"), products("woolworths")
    right = candidates(woolworths)
    rng = random.Random(2023)
    picked = rng.sample(sorted(coles), sheets * per_sheet)
    out_dir.mkdir(parents=True, exist_ok=True)
    for number in range(sheets):
        chosen = picked[number * per_sheet : (number + 1) * per_sheet]
        text = "\n\n".join(block(sku, coles, woolworths, right) for sku in chosen) + "\n"
        (out_dir / f"sheet_{number + 1}.txt").write_text(text)


def l3_blocks(out_dir: Path, gold: Path) -> None:
    """Write the blocks of the gold's L3 products in two halves, without saying which answer is labelled."""
    coles, woolworths = products("coles"), products("woolworths")
    right = candidates(woolworths)
    with gold.open(newline="") as handle:
        skus = [row["coles_sku"] for row in csv.DictReader(handle) if row["level"] == "L3"]
    out_dir.mkdir(parents=True, exist_ok=True)
    half = len(skus) // 2
    for number, part in enumerate((skus[:half], skus[half:]), start=1):
        text = "\n\n".join(block(sku, coles, woolworths, right) for sku in part) + "\n"
        (out_dir / f"l3_part_{number}.txt").write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--l3", type=Path, metavar="GOLD.csv", help="print the gold's L3 blocks, unmarked")
    args = parser.parse_args()
    if args.l3:
        l3_blocks(args.out_dir, args.l3)
    else:
        main(args.out_dir)
