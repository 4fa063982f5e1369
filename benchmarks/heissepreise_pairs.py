"""Build the Austrian labelled pairs of tests/data/substitutions/heissepreise from heissepreise's data.

heissepreise (github.com/badlogic/heissepreise, MIT licence) once committed each chain's
canonical product list as `docs/data/latest-canonical.<chain>.compressed.json`. This reads
Hofer's, MPreis's and Unimarkt's from a clone, labels pairs by fixed rules (never by the
matcher under test), and writes small CSV files: the products needed for a fair candidate
pool and the pairs. See tests/data/substitutions/README.md for the rules and what was
checked by eye.

    git clone https://github.com/badlogic/heissepreise /tmp/heissepreise
    .venv/bin/python -m benchmarks.heissepreise_pairs /tmp/heissepreise
"""

import argparse
import csv
import json
import random
import re
import subprocess
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "substitutions" / "heissepreise"
SEED = 2023
LEFT_PER_CHAIN = 1500
_SIZE = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:g|kg|gramm|ml|l|stk|stuck|st)\b")
_UNITS = {"gramm": "g"}
# Pairs the rules made that reading showed to be wrong: not the same kind after all.
REJECTED: frozenset[tuple[str, str]] = frozenset(
    {
        ("545826", "132682"),  # frozen blueberries, and a reduced-sugar blueberry jam
        ("548756", "12172"),  # 1 l freezer bags, and 6 l ones
        ("548999", "577"),  # whole hazelnuts, and ground ones
        ("544015", "12430"),  # a paprika-chili cheese spread, and crisps of that flavour
    }
)


@dataclass(frozen=True, slots=True)
class Item:
    """One product of a chain's canonical list."""

    chain: str
    sku: str
    name: str
    quantity: float
    unit: str

    @property
    def size(self) -> str:
        """Write the size as quantity and unit, as the chains give it."""
        return f"{self.quantity:g} {_UNITS.get(self.unit, self.unit)}"

    @property
    def size_key(self) -> tuple[float, str]:
        """Return the size as the rules compare it."""
        return (round(self.quantity, 3), _UNITS.get(self.unit, self.unit))


def read_chain(repo: Path, chain: str) -> list[Item]:
    """Read a chain's last committed canonical list from the clone's history."""
    path = f"docs/data/latest-canonical.{chain}.compressed.json"
    commit = _git(repo, "log", "--all", "-1", "--format=%H", "--", path).strip()
    for revision in (commit, f"{commit}^"):
        try:
            data = json.loads(_git(repo, "show", f"{revision}:{path}"))
        except subprocess.CalledProcessError:
            continue
        return _decompress(chain, data)
    raise SystemExit(f"{path} is not in {repo}'s history")


def _git(repo: Path, *args: str) -> str:
    """Run git in the clone and return its output."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _decompress(chain: str, data: dict[str, Any]) -> list[Item]:
    """Unpack heissepreise's flat compressed list: per item its fields in a fixed order."""
    values, items, at = data["data"], [], 0
    for _ in range(data["n"]):
        sku, name = str(values[at + 1]), str(values[at + 2])
        prices = values[at + 5]
        at += 6 + 2 * prices
        unit, quantity = values[at], values[at + 1]
        at += 5
        items.append(Item(chain, sku, " ".join(name.split()), float(quantity), str(unit)))
    return items


def words(name: str) -> list[str]:
    """Fold a name to lower-case letters without accents, its sizes left out, as words."""
    folded = unicodedata.normalize("NFKD", name.lower().replace("ß", "ss"))
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    return re.findall(r"[a-z0-9]+", _SIZE.sub(" ", folded))


def hofer_brand(name: str) -> int:
    """Return how many leading words of a Hofer name are its brand: Hofer writes brands in capitals."""
    count = 0
    for word in name.split():
        letters = [char for char in word if char.isalpha()]
        if len(letters) < 2 or not all(char.isupper() for char in letters):
            break
        count += 1
    return count


def identical(left: list[Item], right: list[Item]) -> dict[str, tuple[str, str]]:
    """Pair items whose names are the same letters once folded and joined, at the same size (L1)."""
    by_key: dict[tuple[str, tuple[float, str]], list[Item]] = defaultdict(list)
    for item in right:
        by_key[("".join(words(item.name)), item.size_key)].append(item)
    pairs: dict[str, tuple[str, str]] = {}
    for item in left:
        joined = "".join(words(item.name))
        found = by_key.get((joined, item.size_key), [])
        if len(joined) >= 8 and len(found) == 1:
            pairs[item.sku] = (found[0].sku, "L1")
    return pairs


def house_equivalents(hofer: list[Item], right: list[Item]) -> dict[str, tuple[str, str]]:
    """Pair a Hofer house-brand item with the one item of the other chain named the same after its brand (L3).

    Hofer's brand is its capitalised leading words; the other chain's name may start with one
    to three brand words of its own. Both rests must be the same letters joined, in order or with
    the words sorted (compounds written together or apart agree), at least 6 letters, the sizes
    equal, and the brands differ.
    """
    by_rest: dict[tuple[str, tuple[float, str]], dict[str, tuple[Item, str]]] = defaultdict(dict)
    for item in right:
        folded = words(item.name)
        for cut in (1, 2, 3):
            for rest in _rests(folded[cut:]):
                if len(rest) >= 6:
                    by_rest[(rest, item.size_key)][item.sku] = (item, " ".join(folded[:cut]))
    pairs: dict[str, tuple[str, str]] = {}
    for item in hofer:
        cut = hofer_brand(item.name)
        folded = words(item.name)
        brand_words = len(words(" ".join(item.name.split()[:cut])))
        if cut == 0 or brand_words >= len(folded):
            continue
        brand, rests = " ".join(folded[:brand_words]), _rests(folded[brand_words:])
        candidates = {
            other.sku: other
            for rest in rests
            for other, other_brand in by_rest.get((rest, item.size_key), {}).values()
            if other_brand.split()[0] != brand.split()[0]
        }
        found = list(candidates.values())
        if len(rests[0]) >= 6 and len(found) == 1 and (item.sku, found[0].sku) not in REJECTED:
            pairs[item.sku] = (found[0].sku, "L3")
    return pairs


def _rests(folded: list[str]) -> tuple[str, str]:
    """Return the words joined in their order and in sorted order: `Saft Apfel` is `Apfelsaft`-like."""
    return ("".join(folded), "".join(sorted(folded)))


def main() -> None:
    """Read the three chains, label pairs, sample the left pool and write the files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("repo", type=Path, help="A clone of github.com/badlogic/heissepreise")
    parser.add_argument("--show", action="store_true", help="Print every pair with its names, to read")
    args = parser.parse_args()
    hofer, mpreis, unimarkt = (read_chain(args.repo, chain) for chain in ("hofer", "mpreis", "unimarkt"))
    # The left file holds two chains: their skus must not collide, as gold pairs name skus only.
    mpreis = [item for item in mpreis if item.sku not in {h.sku for h in hofer}]
    gold = {
        **{("hofer", sku): pair for sku, pair in identical(hofer, unimarkt).items()},
        **{("hofer", sku): pair for sku, pair in house_equivalents(hofer, unimarkt).items()},
        **{("mpreis", sku): pair for sku, pair in identical(mpreis, unimarkt).items()},
    }
    rng = random.Random(SEED)
    left: list[Item] = []
    for chain_items in (hofer, mpreis):
        paired = [item for item in chain_items if (item.chain, item.sku) in gold]
        others = [item for item in chain_items if (item.chain, item.sku) not in gold]
        left += paired + rng.sample(others, max(0, LEFT_PER_CHAIN - len(paired)))
    names = {(item.chain, item.sku): item for item in [*hofer, *mpreis, *unimarkt]}
    OUT.mkdir(parents=True, exist_ok=True)
    _write_items(OUT / "hofer_mpreis.csv", sorted(left, key=lambda item: (item.chain, item.sku)))
    _write_items(OUT / "unimarkt.csv", sorted(unimarkt, key=lambda item: item.sku))
    with (OUT / "gold.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("left_sku", "right_sku", "level", "left_chain"))
        for (chain, sku), (right, level) in sorted(gold.items(), key=lambda kv: (kv[1][1], kv[0])):
            writer.writerow((sku, right, level, chain))
            if args.show:
                print(f"{level} {names[(chain, sku)].name} | {names[('unimarkt', right)].name}")
    levels = [level for _, level in gold.values()]
    print(
        f"{len(left)} left products, {len(unimarkt)} right; "
        f"pairs: L1 {levels.count('L1')}, L3 {levels.count('L3')}"
    )


def _write_items(path: Path, items: list[Item]) -> None:
    """Write products as the CSV the importers read."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("chain", "sku", "name", "size"))
        writer.writerows((item.chain, item.sku, item.name, item.size) for item in items)


if __name__ == "__main__":
    main()
