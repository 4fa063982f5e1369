"""Members answered by their anchor: what a member's anchor already shows is not kept twice.

Grouping places a store under an anchor when the two charge the same. A member's sighting
that its anchor's current price shows too (the same label: price, was-price, availability,
member price, multi-buy, how it is sold, the unit price) adds nothing: the catalogue answers
the member through its anchor, so the sighting is not written, and a price of the member's
own that it replaces (an exception that no longer holds) ends. What a member charges apart
from its anchor stays its own.
"""

from collections.abc import Hashable
from datetime import datetime, timedelta

ANCHOR_LAG = timedelta(hours=24)
"""An anchor's price seen this long before a member's sighting may be out of date: it answers nothing."""


def answers(
    *, anchor_shelf: Hashable, anchor_seen: datetime, member_shelf: Hashable, member_seen: datetime
) -> bool:
    """Tell whether an anchor's current price answers a member's sighting: the same label, seen lately."""
    return anchor_seen >= member_seen - ANCHOR_LAG and anchor_shelf == member_shelf
