"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same, and a member's bargains
are its anchor's. A member's sighting that its anchor's newest run shows too (price, was-price
and label) adds nothing: it is not folded, and a history of the member's own that it replaces
(an exception that no longer holds) is dropped, leaving its count. So the chain's counts hold
each pricing decision once: a group at its anchor's price, and each member where it charges
apart from its anchor.
"""

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import eq, gt, itemgetter, not_
from typing import NamedTuple, cast

from bargains.domain.history import NO_LABEL, Label, Segment, SoldBy
from contracts.events.v1 import MultiBuy, PriceColumns

ANCHOR_LAG = timedelta(hours=24)
"""An anchor's price seen this long before a member's sighting may be out of date: it answers nothing."""


class Run(NamedTuple):
    """An anchor's newest run, as a member's sighting is compared with it: its shelf and last sighting."""

    price_cents: int
    was_price_cents: int | None
    label: Label
    ends_at: datetime


def answers(
    anchor: Run | Segment,
    *,
    price_cents: int,
    was_price_cents: int | None,
    label: Label,
    observed_at: datetime,
) -> bool:
    """Tell whether an anchor's newest run answers a member's sighting: the same shelf, seen lately."""
    return anchor.ends_at >= observed_at - ANCHOR_LAG and (
        anchor.price_cents,
        anchor.was_price_cents,
        anchor.label,
    ) == (price_cents, was_price_cents, label)


_SHELF, _ENDS = itemgetter(0, 1, 2), itemgetter(3)


def unanswered(
    prices: PriceColumns, *, theirs: Mapping[str, Run | None], mine: Collection[str]
) -> list[int] | None:
    """Return the positions of a member's page that its anchor may not answer; None to judge it all.

    `answers`, judged a column at a time for a page seen at once: a price is answered when its
    anchor's newest run (`theirs`, by sku) shows the same price, was-price and label, seen at
    most ANCHOR_LAG before the page, and the member holds no history of its own for it (`mine`:
    those go the per-price way, which drops them). Most of a member's page is its anchor's, so
    most of its prices are judged without a Python step each. None (prices seen apart, a
    product twice, a lagging anchor) sends the whole page the per-price way.
    """
    skus = prices.sku
    if prices.observed_at_each is not None or len(set(skus)) != len(skus):
        return None
    found = list(map(theirs.get, skus))
    present = cast(list[Run], list(filter(None, found)))
    if not present or min(map(_ENDS, present)) < prices.observed_at - ANCHOR_LAG:
        return None
    count = len(skus)
    shown = map(_SHELF, present) if len(present) == count else (f and f[:3] for f in found)
    shelves = zip(
        prices.price_cents, prices.was_price_cents or repeat(None, count), labels(prices), strict=True
    )
    same = map(eq, shown, shelves)
    if mine:
        same = map(gt, same, map(mine.__contains__, skus))  # equal, and not a history of its own
    return list(compress(range(count), map(not_, same)))


def labels(prices: PriceColumns) -> Iterator[Label]:
    """Return what each price's label shows beside it (NO_LABEL for most)."""
    count = len(prices.sku)
    if prices.member_price_cents is None and prices.multibuy is None and prices.sold_by is None:
        return repeat(NO_LABEL, count)
    each: Iterator[SoldBy] = repeat("each", count)
    return map(
        label_from,
        prices.member_price_cents or repeat(None, count),
        prices.multibuy or repeat(None, count),
        prices.sold_by or each,
    )


def label_from(member_price_cents: int | None, multibuy: MultiBuy | None, sold_by: SoldBy) -> Label:
    """Return what a price's label shows beside it, from its parts."""
    # Most prices: no Label built per price.
    if member_price_cents is None and multibuy is None and sold_by == "each":
        return NO_LABEL
    return Label(
        member_price_cents=member_price_cents,
        multibuy_quantity=None if multibuy is None else multibuy.quantity,
        multibuy_total_cents=None if multibuy is None else multibuy.total_cents,
        sold_by=sold_by,
    )
