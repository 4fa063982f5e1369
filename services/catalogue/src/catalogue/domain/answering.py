"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same. A member's sighting
that its anchor's current price shows too (the same label: price, was-price, availability,
member price, multi-buy, how it is sold, the unit price) adds nothing: the catalogue answers
the member through its anchor, so the sighting is not written, and a price of the member's
own that it replaces (an exception that no longer holds) ends. What a member charges apart
from its anchor stays its own.
"""

from collections.abc import Collection, Hashable, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import eq, gt, itemgetter, not_
from typing import cast

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
_SHELF, _SEEN = itemgetter(0), itemgetter(1)


def unanswered(
    prices: PriceColumns, *, theirs: Mapping[str, Shelf | None], mine: Collection[str]
) -> list[int] | None:
    """Return the positions of a member's page that its anchor may not answer; None to judge it all.

    `answers`, judged a column at a time for a page seen at once: a price is answered when its
    label is the anchor's current one (`theirs`, by sku), seen at most ANCHOR_LAG before the
    page, and the member shows no price of its own for it (`mine`: those go the per-price way,
    which ends them). Most of a member's page is its anchor's, so most of its prices are judged
    without a Python step each. None (prices seen apart, a product twice, a lagging anchor)
    sends the whole page the per-price way.
    """
    skus = prices.sku
    if prices.observed_at_each is not None or len(set(skus)) != len(skus):
        return None
    found = list(map(theirs.get, skus))
    present = cast(list[Shelf], list(filter(None, found)))
    if not present or min(map(_SEEN, present)) < prices.observed_at - ANCHOR_LAG:
        return None
    shown = map(_SHELF, present) if len(present) == len(skus) else (f and f[0] for f in found)
    same = map(eq, shown, shelves(prices))
    if mine:
        same = map(gt, same, map(mine.__contains__, skus))  # equal, and not a price of its own
    return list(compress(range(len(skus)), map(not_, same)))


def shelves(prices: PriceColumns) -> Iterator[tuple[object, ...]]:
    """Return what each price's label shows, as the catalogue's PriceRow.shelf has it."""
    count = len(prices.sku)

    def column(given: tuple[object, ...] | None, default: object) -> Iterator[object] | tuple[object, ...]:
        return repeat(default, count) if given is None else given

    def nothing(columns: int) -> list[Iterator[object]]:
        return [repeat(None, count) for _ in range(columns)]

    multibuys, stated = prices.multibuy, prices.unit_price
    return zip(
        prices.price_cents,
        column(prices.was_price_cents, None),
        column(prices.available, True),
        column(prices.member_price_cents, None),
        *(zip(*map(_multibuy, multibuys), strict=True) if multibuys else nothing(2)),
        column(prices.sold_by, "each"),
        *(zip(*map(_stated, stated), strict=True) if stated else nothing(4)),
        strict=True,
    )


def _multibuy(offer: MultiBuy | None) -> tuple[int | None, int | None]:
    """Return a multi-buy's columns."""
    return (None, None) if offer is None else (offer.quantity, offer.total_cents)


def _stated(unit: StatedUnitPrice | None) -> tuple[int | None, int | None, str | None, str | None]:
    """Return a stated unit price's columns."""
    return (None, None, None, None) if unit is None else (unit.cents, unit.quantity, unit.unit, unit.text)
