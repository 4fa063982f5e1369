"""Match two product lists offline: for each product on the left, its candidates on the right.

What `pricestream match` runs: the same parsing, levels and thresholds as the service,
over two lists held in memory, with progress reported per phase; and the readers of its
files (products in any format the scraper imports, gold pairs as CSV).
"""

import csv
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from substitutions.domain.catalogue import Catalogue, Description
from substitutions.domain.evaluation import GoldPair, Ranked
from substitutions.domain.matching import LEVELS, Level, Policy
from substitutions.embeddings import Encoder, Vectors

Progress = Callable[[str, int, int], None]
"""Called with a phase name, the items done so far and the total."""

RowReader = Callable[[str, bytes], Iterable[Mapping[str, object]]]
"""Reads a file's rows from its name and bytes: the scraper's importers, passed in by the CLI
(a service imports no other service)."""

_CHAIN = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ranked candidate of a left product, with what the output file shows."""

    left: Description
    rank: int
    right: Description
    level: Level
    score: float
    reason: str


def match_lists(
    left: Sequence[Description],
    right: Sequence[Description],
    *,
    encoder: Encoder,
    policy: Policy,
    progress: Progress | None = None,
    chunk: int = 512,
) -> list[Candidate]:
    """Rank, for each left product, the right products at each level (L1 first, best score first)."""
    left, right = _distinct(left), _distinct(right)
    catalogue = build_catalogue(left, right, encoder=encoder, policy=policy, progress=progress, chunk=chunk)
    by_key = {(d.chain, d.sku): d for d in [*left, *right]}
    right_chain = right[0].chain if right else ""
    candidates: list[Candidate] = []
    for start in range(0, len(left), chunk):
        positions = list(range(start, min(start + chunk, len(left))))
        found = catalogue.index.find(positions, policy, within=right_chain)
        for at in positions:
            ordered = sorted(found[at], key=lambda match: (match.level, -match.score))
            for rank, match in enumerate(ordered, start=1):
                other = catalogue.index.products[match.other]
                candidates.append(
                    Candidate(
                        left=left[at],
                        rank=rank,
                        right=by_key[(other.chain, other.sku)],
                        level=match.level,
                        score=match.score,
                        reason=match.reason,
                    )
                )
        if progress is not None:
            progress("matching", positions[-1] + 1, len(left))
    return candidates


def build_catalogue(
    left: Sequence[Description],
    right: Sequence[Description],
    *,
    encoder: Encoder,
    policy: Policy,
    progress: Progress | None = None,
    chunk: int = 512,
) -> Catalogue:
    """Parse and embed both lists (left first, each product once) into a catalogue, without lists."""
    left, right = _distinct(left), _distinct(right)
    if {d.chain for d in left} & {d.chain for d in right}:
        raise ValueError("the two lists must name different chains")
    catalogue = Catalogue.learning([*left, *right], dimensions=encoder.dimensions, policy=policy)
    products = [catalogue.parse(description) for description in [*left, *right]]
    kinds = sorted({product.kind for product in products})
    vectors: dict[str, Vectors] = {}
    for start in range(0, len(kinds), chunk * 2):
        batch = kinds[start : start + chunk * 2]
        vectors |= dict(zip(batch, encoder.encode(batch), strict=True))
        if progress is not None:
            progress("encoding", min(start + len(batch), len(kinds)), len(kinds))
    catalogue.load(products, (vectors[p.kind] for p in products))
    return catalogue


def ranked_by_left(candidates: Sequence[Candidate]) -> dict[str, list[Ranked]]:
    """Group candidates by left sku, in rank order, as the evaluation reads them."""
    ranked: dict[str, list[Ranked]] = {}
    for candidate in candidates:
        ranked.setdefault(candidate.left.sku, []).append(
            Ranked(candidate.right.sku, candidate.level, candidate.score)
        )
    return ranked


def read_products(
    path: Path, read_rows: RowReader, *, chain: str | None = None
) -> tuple[list[Description], int]:
    """Read a product file with `read_rows`; return each product once, and the rows skipped.

    A row is skipped when it has no sku or name, or repeats a product already read. A row
    without a chain takes `chain`, else one made of the file's name.
    """
    default_chain = chain or _CHAIN.sub("-", path.stem.lower()).strip("-") or "file"
    descriptions: dict[tuple[str, str], Description] = {}
    skipped = 0
    for row in read_rows(path.name, path.read_bytes()):
        sku, name = row.get("sku"), row.get("name")
        if "_error" in row or sku is None or not isinstance(name, str) or not name.strip():
            skipped += 1
            continue
        key = (str(row.get("chain") or default_chain), str(sku))
        if key in descriptions:
            skipped += 1
            continue
        descriptions[key] = Description(
            chain=key[0],
            sku=key[1],
            name=name.strip(),
            brand=_text(row.get("brand")),
            size=_text(row.get("size")),
            category=_text(row.get("category")),
            barcode=_text(row.get("barcode")),
        )
    return list(descriptions.values()), skipped


def read_gold(path: Path) -> list[GoldPair]:
    """Read gold pairs: a CSV whose first three columns are left sku, right sku and level."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 3 or row[2] not in LEVELS:
            raise ValueError(f"{path.name} line {number}: expected left_sku,right_sku,level (L1-L4)")
        level: Level = row[2]
        pairs.append(GoldPair(row[0], row[1], level))
    if not pairs:
        raise ValueError(f"{path.name}: no pairs after its header (expected left_sku,right_sku,level rows)")
    return pairs


def _distinct(descriptions: Sequence[Description]) -> list[Description]:
    """Keep the first description of each product."""
    first: dict[tuple[str, str], Description] = {}
    for description in descriptions:
        first.setdefault((description.chain, description.sku), description)
    return list(first.values())


def _text(value: object) -> str | None:
    """Return a cell as stripped text, or None when empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None
