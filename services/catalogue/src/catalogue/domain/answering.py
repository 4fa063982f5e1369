"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same. A member's sighting
that its anchor's current price shows too (the same label: price, was-price, availability,
member price, multi-buy, how it is sold, the unit price) adds nothing: the catalogue answers
the member through its anchor, so the sighting is not written, and a price of the member's
own that it replaces (an exception that no longer holds) ends. What a member charges apart
from its anchor stays its own.
"""

from collections.abc import Hashable, Iterable, Iterator
from datetime import datetime, timedelta
from itertools import repeat

from contracts.events.v1 import MultiBuy, PriceColumns, StatedUnitPrice

ANCHOR_LAG = timedelta(hours=24)
"""An anchor's price seen this long before a member's sighting may be out of date: it answers nothing."""


def answers(
    *, anchor_shelf: Hashable, anchor_seen: datetime, member_shelf: Hashable, member_seen: datetime
) -> bool:
    """Tell whether an anchor's current price answers a member's sighting: the same label, seen lately."""
    return anchor_seen >= member_seen - ANCHOR_LAG and anchor_shelf == member_shelf


Shelf = tuple[tuple[object, ...], datetime]
"""What a store's label shows for a product (the catalogue's PriceRow.shelf), and when it was seen."""


def shelves(prices: PriceColumns) -> Iterator[tuple[object, ...]]:
    """Return what each price's label shows, as the catalogue's PriceRow.shelf has it."""
    return zip(*shelf_columns(prices), strict=True)


def shelf_columns(prices: PriceColumns) -> list[Iterable[object]]:
    """Return the columns of what a page's labels show, PriceRow.shelf's fields in order (in C, no
    step per price where the page left a column out)."""
    count = len(prices.sku)

    def column(given: tuple[object, ...] | None, default: object) -> Iterable[object]:
        return repeat(default, count) if given is None else given

    def nothing(columns: int) -> list[Iterable[object]]:
        return [repeat(None, count) for _ in range(columns)]

    multibuys, stated = prices.multibuy, prices.unit_price
    return [
        prices.price_cents,
        column(prices.was_price_cents, None),
        column(prices.available, True),
        column(prices.member_price_cents, None),
        *(zip(*map(_multibuy, multibuys), strict=True) if multibuys else nothing(2)),
        column(prices.sold_by, "each"),
        *(zip(*map(_stated, stated), strict=True) if stated else nothing(4)),
    ]


def _multibuy(offer: MultiBuy | None) -> tuple[int | None, int | None]:
    """Return a multi-buy's columns."""
    return (None, None) if offer is None else (offer.quantity, offer.total_cents)


def _stated(unit: StatedUnitPrice | None) -> tuple[int | None, int | None, str | None, str | None]:
    """Return a stated unit price's columns."""
    return (None, None, None, None) if unit is None else (unit.cents, unit.quantity, unit.unit, unit.text)
