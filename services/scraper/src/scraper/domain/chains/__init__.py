"""Pure parsers of the chains' own web APIs: bodies in, the scraper's raw rows out.

A parser raises ShopAnswerError when the whole answer cannot be trusted (a renamed field,
a page that is silently empty); a single product it cannot read becomes a row with an
`_error`, which the scraper quarantines with its reason while the page goes on.
"""

import math
from dataclasses import dataclass
from typing import Any, Literal

from scraper.domain.importers import RawRow

DefenceKind = Literal["challenge", "build_id", "forbidden", "rate_limited", "empty_page", "schema_drift"]
"""Why a site's answer was refused as a whole."""


class ShopAnswerError(Exception):
    """An answer that cannot be trusted as a whole; `kind` says which defence tripped."""

    def __init__(self, kind: DefenceKind, detail: str) -> None:
        super().__init__(detail)
        self.kind: DefenceKind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ChainCategory:
    """A category as a chain's tree lists it: slug, the chain's own id and name, product count."""

    slug: str
    node_id: str
    name: str
    products: int | None

    def pages(self, page_size: int) -> int:
        """Return how many pages of `page_size` list the category's products."""
        return math.ceil((self.products or 0) / page_size)


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """A category page: its rows (products and quarantined tiles) and the total the shop states."""

    rows: list[RawRow]
    total: int


def field(mapping: Any, key: str, where: str) -> Any:
    """Return `mapping[key]`, or raise schema drift naming the field that went missing."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise ShopAnswerError("schema_drift", f"{where} has no field {key!r}")
    return mapping[key]


def check_not_silently_empty(
    products: int, *, total: int, start: int, expected_total: int | None, page: int
) -> None:
    """Raise when a page lists no products although the shop says this page should hold some."""
    if products:
        return
    if total > start:
        raise ShopAnswerError("empty_page", f"page {page} lists no products where the category says {total}")
    if expected_total and not total:
        raise ShopAnswerError(
            "empty_page", f"page {page} says 0 products where the category tree said {expected_total}"
        )


def error_row(reason: str, **context: object) -> RawRow:
    """Make the row that stands for a tile the parser could not read, for the quarantine."""
    return {"_error": reason, **{key: value for key, value in context.items() if value is not None}}
