"""Print labelling sheets for Coles <-> Woolworths pairs: `python -m benchmarks.label_sheets OUT_DIR`.

The sheets are how the gold pairs in tests/data/substitutions were made: each lists a
random Coles product and the Woolworths products that share the most words with it
(plain word overlap, not the matcher under test), and a person reads them and writes
down which one is the same item (L1) and which is another brand's equivalent (L3).
"""

import random
import re
import sys
from pathlib import Path

from scraper.domain.importers import read_rows

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "au-grocery-2023"
_WORD = re.compile(r"[a-z0-9]+")


def _products(chain: str) -> dict[str, dict[str, str]]:
    """Read one chain's file into rows by sku, first row wins."""
    path = DATA / f"{chain}.json"
    products: dict[str, dict[str, str]] = {}
    for row in read_rows(path.name, path.read_bytes()):
        if "sku" in row and "name" in row:
            products.setdefault(str(row["sku"]), row)
    return products


def _words(row: dict[str, str], *, with_brand: bool) -> set[str]:
    """Return the lower-cased words of a product's brand and name."""
    text = f"{row.get('brand') or ''} {row['name']}" if with_brand else row["name"]
    return set(_WORD.findall(text.lower()))


def _line(sku: str, row: dict[str, str]) -> str:
    """Describe one product on one line."""
    size = row.get("size") or f"qty {row.get('quantity')}"
    return f"{sku:>8} | {row.get('brand') or '-'} | {row['name']} | {size} | ${row.get('price')}"


def main(out_dir: Path, *, sheets: int = 4, per_sheet: int = 150, candidates: int = 12) -> None:
    """Write the sheets: per Coles product, the Woolworths products with the most words in common."""
    coles, woolworths = _products("coles"), _products("woolworths")
    right = [(sku, _words(row, with_brand=True)) for sku, row in woolworths.items()]
    rng = random.Random(2023)
    picked = rng.sample(sorted(coles), sheets * per_sheet)
    out_dir.mkdir(parents=True, exist_ok=True)
    for number in range(sheets):
        lines = []
        for sku in picked[number * per_sheet : (number + 1) * per_sheet]:
            row = coles[sku]
            words = _words(row, with_brand=True)
            plain = _words(row, with_brand=False)
            by_all = sorted(right, key=lambda item: -len(words & item[1]) / len(words | item[1]))
            by_name = sorted(right, key=lambda item: -len(plain & item[1]) / len(plain | item[1]))
            shown = list(dict.fromkeys(s for s, _ in by_all[: candidates // 2] + by_name[: candidates // 2]))
            lines.append("COLES " + _line(sku, row))
            lines += ["   W  " + _line(s, woolworths[s]) for s in shown]
            lines.append("")
        (out_dir / f"sheet_{number + 1}.txt").write_text("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
