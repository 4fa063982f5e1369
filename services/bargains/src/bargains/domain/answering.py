"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same, and a member's bargains
are its anchor's. A member's sighting that its anchor's newest run shows too (price, was-price
and label) adds nothing: it is not folded, and a history of the member's own that it replaces
(an exception that no longer holds) is dropped, leaving its count. So the chain's counts hold
each pricing decision once: a group at its anchor's price, and each member where it charges
apart from its anchor.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import repeat
from typing import NamedTuple

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
