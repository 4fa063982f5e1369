"""A member's page judged a column at a time: which of its prices its anchor may not answer.

Each service answers a member store through its anchor: a member's price that its anchor's
stored one shows too is not kept twice. Judged price by price, that costs a Python step per
price, and most prices are a member's that its anchor answers. A page whose prices came as
columns seen at once is judged a column at a time instead (in C: `map`, `zip`, `compress`), and
only the prices left go the service's per-price way. Each service says what must be equal
(`shown`, `shelves`) and how late its anchor may be (`lag`, `fresh_since`).
"""

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import compress
from operator import eq, gt, not_
from typing import TypeVar, cast

from contracts.events.v1 import PriceColumns, PricesScrapedPayload

Row = TypeVar("Row")


def judgeable(
    batches: Sequence[PricesScrapedPayload], anchor_of: Callable[[str, str], str | None]
) -> dict[int, tuple[str, PriceColumns]]:
    """Return the members' pages to judge a column at a time, by position, with their anchor.

    A page of columns whose store has an anchor (`anchor_of(chain, store)`), seen once in the
    batches, and whose anchor's prices are not among them: the per-price way judges the rest (a
    product seen twice, a member against its anchor's prices of the same batch).
    """
    listed = Counter((batch.chain, batch.store_id) for batch in batches)
    return {
        i: (anchor, batch.prices)
        for i, batch in enumerate(batches)
        if batch.prices is not None
        and (anchor := anchor_of(batch.chain, batch.store_id)) is not None
        and listed[batch.chain, batch.store_id] == 1
        and (batch.chain, anchor) not in listed
    }


def unanswered(
    prices: PriceColumns,
    *,
    theirs: Mapping[str, Row | None],
    mine: Collection[str],
    shown: Callable[[Row], object],
    seen: Callable[[Row], datetime],
    shelves: Iterable[object],
    lag: timedelta,
    fresh_since: datetime | None = None,
) -> list[int] | None:
    """Return the positions of a member's page that its anchor may not answer; None to judge it all.

    A price is answered when its anchor's row (`theirs`, by sku) shows what it shows (`shown` of
    the row equals its entry of `shelves`), the member holds no row of its own for it (`mine`:
    those go the per-price way, which replaces them), and every anchor's row the page meets was
    seen at most `lag` before the page (and since `fresh_since`, with the page). None (prices
    seen apart, a product twice, no anchor's row, one too old) sends the whole page the per-price
    way.
    """
    skus = prices.sku
    if prices.observed_at_each is not None or len(set(skus)) != len(skus):
        return None
    oldest = prices.observed_at - lag
    if fresh_since is not None:
        if prices.observed_at < fresh_since:
            return None
        oldest = max(oldest, fresh_since)
    found = list(map(theirs.get, skus))
    present = cast(list[Row], list(filter(None, found)))
    if not present or min(map(seen, present)) < oldest:
        return None
    showing = map(shown, present) if len(present) == len(skus) else (f and shown(f) for f in found)
    same = map(eq, showing, shelves)
    if mine:
        same = map(gt, same, map(mine.__contains__, skus))  # equal, and not a row of its own
    return list(compress(range(len(skus)), map(not_, same)))
