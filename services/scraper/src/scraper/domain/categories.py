"""Map each chain's categories onto the shared tree: pure reading and lookup of the category map.

The map is a CSV file with the header `chain,chain_category,shared_path`, one row per chain
category, which an operator reviews and corrects (the scraper reads the packaged
`scraper/data/category_map.csv` unless `SCRAPER_CATEGORY_MAP` names another). Chain
categories are compared by `category_key`, so a shop's "Dairy, Eggs & Fridge > Cheese" and
its browse path `dairy-eggs-fridge/cheese` are one category. A category with no row of its
own takes its parent's (a new sub-category of a mapped aisle stays in that aisle); anything
else stays unmapped (None), to be listed, never guessed.
"""

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contracts.categories import SHARED_CATEGORIES

COLUMNS = ("chain", "chain_category", "shared_path")

_LEVEL = re.compile(r"\s*(?:>|/)\s*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


class CategoryMapError(ValueError):
    """The category map cannot be used; the message names the line and the fault."""


def category_key(category: str) -> str:
    """Return the form chain categories are compared in: `dairy-eggs-fridge/cheese`."""
    levels = (
        _NOT_ALNUM.sub("-", level.lower().replace("&", " ")).strip("-") for level in _LEVEL.split(category)
    )
    return "/".join(level for level in levels if level)


@dataclass(frozen=True, slots=True)
class CategoryMap:
    """Each chain's categories (by `category_key`) and the shared path each maps to."""

    paths: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def shared(self, chain: str, category: str | None) -> str | None:
        """Return the shared path of a chain's category, its parent's when it has none; None if unmapped."""
        if not category:
            return None
        key = category_key(category)
        while key:
            if (path := self.paths.get((chain, key))) is not None:
                return path
            key = key.rpartition("/")[0]
        return None

    def unmapped(self, seen: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return the (chain, category) pairs among `seen` that map to nothing, sorted and once each."""
        return sorted({(chain, category) for chain, category in seen if self.shared(chain, category) is None})


def read_category_map(text: str) -> CategoryMap:
    """Read a category map's CSV text, refusing it whole when a row is wrong (the message says where)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(cell.strip().lower() for cell in header) != COLUMNS:
        raise CategoryMapError(f"line 1: the header must be {','.join(COLUMNS)}, not {header!r}")
    paths: dict[tuple[str, str], str] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(COLUMNS):
            raise CategoryMapError(f"line {line}: expected {len(COLUMNS)} cells, found {len(cells)}")
        chain, category, path = (cell.strip() for cell in cells)
        key = category_key(category)
        if not chain or not key:
            raise CategoryMapError(f"line {line}: the chain and its category must not be empty")
        if path not in SHARED_CATEGORIES:
            raise CategoryMapError(
                f"line {line}: {path!r} is not a path of the shared tree (contracts.categories)"
            )
        if (earlier := paths.get((chain, key), path)) != path:
            raise CategoryMapError(
                f"line {line}: {chain} {category!r} is already mapped to {earlier!r}, not {path!r}"
            )
        paths[(chain, key)] = path
    return CategoryMap(paths)
