"""Sweeps: a store's page seen whole again moves one row, not the last sighting of each price.

A service keeps, per store and product, when its current price was last seen, and a price seen
again unchanged only moves that time: a row updated per price, the cost of a scrape whose prices
hardly change (and of every round before groups are known). Bargains holds its runs' ends so.
A page of columns seen at once names a fixed set of one store's products (`SeenPage.page`, a
hash of its skus). Once a batch has written each of its products' current rows as seen at the
page's time, those rows are held by the page's sweep: one row per store and page, whose
`seen_at` then stands for their last sighting whenever it is later than their own. The next
time the page is seen with nothing changed, only the sweep moves (`plan` tells which rows need
no write).

What keeps it true: a sweep moves only when every product of its page was seen unchanged at the
new time, and a row stops being held when it is written any other way (the service writes it
with no sweep) or stops being its product's current one (the service writes its last sighting
into it first).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from itertools import repeat

from contracts.events.v1 import PriceColumns, PricesScrapedPayload

Key = tuple[str, str]
"""(store_id, sku)."""


@dataclass(frozen=True, slots=True)
class SeenPage:
    """A store's page of prices seen whole at one moment: its products and when."""

    store_id: str
    page: int
    """Which products: a 64-bit hash of the page's skus in order, equal for an equal page."""
    skus: Sequence[str]
    seen_at: datetime
    shelves: int = 0
    """What the page shows: a 64-bit hash of every column but its skus and moments (`shelves_of`),
    equal for the page seen again with nothing changed."""


def page_of(skus: Sequence[str]) -> int:
    """Return the page's identity: a signed 64-bit hash of its skus in order (a bigint column)."""
    digest = blake2b("\x1f".join(skus).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SHOWN = tuple(
    name for name in PriceColumns.model_fields if name not in {"sku", "observed_at", "observed_at_each"}
)
"""The columns that say what a page shows (a column added to the contract counts too)."""


def shelves_of(prices: PriceColumns) -> int:
    """Return a signed 64-bit hash of what a page's prices show: every column but skus and moments.

    Stable across processes (a replica compares it with what another stored), unlike `hash`.
    """
    shown = tuple(getattr(prices, name) for name in _SHOWN)
    digest = blake2b(repr(shown).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def seen_pages(batches: Sequence[PricesScrapedPayload]) -> list[SeenPage | None]:
    """Return, per batch, its page if its prices came as columns seen at once, each product once."""
    pages: list[SeenPage | None] = []
    for batch in batches:
        prices = batch.prices
        if prices is None or prices.observed_at_each is not None or len(set(prices.sku)) != len(prices.sku):
            pages.append(None)
        else:
            # In datetime.UTC, as sightings carry it: two such moments compare without a call.
            seen_at = prices.observed_at.astimezone(UTC)
            page = SeenPage(batch.store_id, page_of(prices.sku), prices.sku, seen_at, shelves_of(prices))
            pages.append(page)
    return pages


def apart(pages: Sequence[SeenPage]) -> bool:
    """Tell whether a store's pages of a batch are different pages none of whose products is on
    another: each then holds its own rows, and each may take its sweep's way on its own."""
    skus = set[str]().union(*(page.skus for page in pages))
    return len({page.page for page in pages}) == len(pages) and len(skus) == sum(
        map(len, (p.skus for p in pages))
    )


@dataclass(slots=True)
class Sweeping:
    """What a batch's pages do to its writes."""

    held: dict[Key, int] = field(default_factory=dict)
    """Rows to write held by a sweep: its page, by key."""
    skipped: set[Key] = field(default_factory=set)
    """Rows whose sighting only moved, which their sweep now carries: no write."""
    sweeps: dict[tuple[str, int], datetime] = field(default_factory=dict)
    """Sweeps to store, by (store_id, page): when each was seen."""


def plan(
    pages: Sequence[SeenPage | None],
    *,
    moved: Mapping[Key, datetime],
    renewed: Mapping[Key, datetime],
    held: Mapping[Key, int],
) -> Sweeping:
    """Return which rows the batch's pages hold, which need no write, and the sweeps to store.

    `moved`: keys whose current row only moves its last sighting, to when; `renewed`: keys whose
    current row is written anew (a new price), seen until when; `held`: the page holding each
    key's current row as read. A page counts when each of its products' rows was moved or
    renewed to the page's moment; it needs no row written when each was only moved and its
    sweep held them all. Two pages of a store seen at one moment may share products: each row
    is then held by either, skipped or written, and both sweeps stand at that moment.
    """
    result = Sweeping()
    for p in pages:
        if p is None:
            continue
        keys = list(zip(repeat(p.store_id), p.skus))
        seen = list(map(moved.get, keys))
        only_moved = None not in seen
        if not only_moved:
            seen = [at if at is not None else renewed.get(key) for at, key in zip(seen, keys, strict=True)]
        if seen.count(p.seen_at) != len(keys):
            continue  # a product not seen at the page's moment: an older sighting, or answered elsewhere
        if only_moved and list(map(held.get, keys)).count(p.page) == len(keys):
            result.skipped.update(keys)
        else:
            result.held.update(dict.fromkeys(keys, p.page))
        result.sweeps[p.store_id, p.page] = p.seen_at
    return result
