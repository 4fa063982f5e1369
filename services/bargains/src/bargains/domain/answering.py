"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same, and a member's bargains
are its anchor's. A member's sighting that its anchor's newest run shows too (price, was-price
and label) adds nothing: it is not folded, and a history of the member's own that it replaces
(an exception that no longer holds) is dropped, leaving its count. So the chain's counts hold
each pricing decision once: a group at its anchor's price, and each member where it charges
apart from its anchor.
"""

from datetime import datetime, timedelta
from typing import NamedTuple

from bargains.domain.history import Label, Segment

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
