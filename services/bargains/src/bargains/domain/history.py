"""A compact price history per (chain, sku, store): one segment per run of an unchanged price.

`fold` only ever appends to the newest end of a history, so:

- an observation at or before the last one seen is dropped: an older scrape never overwrites a
  newer price, and a duplicate changes nothing (folding is idempotent);
- folding observations in time order gives one result however they are batched, so replaying every
  event from the start equals processing them one by one as they arrived;
- when older observations arrive late, the result is that of folding, in time order, only the
  observations that were the newest seen when they arrived. Those late ones are lost, not merged,
  which keeps a projection deterministic for a given event order.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, NamedTuple

SoldBy = Literal["each", "kg"]


@dataclass(frozen=True, slots=True)
class Label:
    """What a shelf label shows beside the price: a member price, a multi-buy, and how the item is sold."""

    member_price_cents: int | None = None
    multibuy_quantity: int | None = None
    multibuy_total_cents: int | None = None
    sold_by: SoldBy = "each"


NO_LABEL = Label()


class Segment(NamedTuple):
    """A run of observations of one price, was-price and label, from its first to its last sighting.

    A named tuple, not a frozen dataclass: one is built per price folded and per row read, and a
    tuple is built in a third of the time.
    """

    price_cents: int
    was_price_cents: int | None
    starts_at: datetime
    ends_at: datetime
    label: Label = NO_LABEL


def fold(
    history: tuple[Segment, ...],
    *,
    price_cents: int,
    was_price_cents: int | None,
    observed_at: datetime,
    label: Label = NO_LABEL,
) -> tuple[Segment, ...]:
    """Add one observation to a history, extending its last segment when price and label are unchanged."""
    if not history:
        return (Segment(price_cents, was_price_cents, observed_at, observed_at, label),)
    last = history[-1]
    if observed_at <= last.ends_at:
        return history
    if (last.price_cents, last.was_price_cents, last.label) == (price_cents, was_price_cents, label):
        # Built directly rather than by dataclasses.replace: this runs once per price folded.
        extended = Segment(last.price_cents, last.was_price_cents, last.starts_at, observed_at, last.label)
        return (*history[:-1], extended)
    return (*history, Segment(price_cents, was_price_cents, observed_at, observed_at, label))


def utc_day(at: datetime) -> date:
    """Return the UTC calendar day of a moment: current prices are counted by the day last seen."""
    # Moments read from events and from PostgreSQL are in UTC already: their date is the day.
    return at.date() if at.tzinfo is UTC else at.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class PriceMove:
    """One store leaving (-1) or joining (+1) the count of a product's price on the day last seen."""

    sku: str
    price_cents: int
    seen_on: date
    delta: int


Swept = tuple[Mapping[tuple[str, int], int], date | None, date]
"""Pages seen again unchanged: how many stores show each product at each price, the day they were
last seen (None: a store's first page, never counted) and the day they are seen now."""


def tally_moves(
    changes: Iterable[tuple[str, tuple[Segment, ...], tuple[Segment, ...]]],
    *,
    read_from: date,
    swept: Iterable[Swept] = (),
) -> list[PriceMove]:
    """Return how history changes (sku, old, new) move the stores' counts, summed per product, price and day.

    Each store leaves the count of its old price and day and joins its new one's. A batch moves
    thousands of stores between the same few counts, so they are summed here, not row by row in
    the database; a sum of zero changes no count and is left out. So are moves on days before
    `read_from`: no median reads a day older than the freshness window again (the clock only
    moves on), so a price already stale when it arrives, as in an import of old files, or a
    store leaving a stale day costs no row. Stores whose pages were seen again unchanged
    (`swept`, counted by product and price) move from the day last seen to the day now.
    """

    def counted(sku: str, history: tuple[Segment, ...]) -> tuple[str, int, date] | None:
        """Return the count a history's store is in: its newest price on the day last seen."""
        if not history:
            return None
        last = history[-1]
        day = utc_day(last.ends_at)
        return (sku, last.price_cents, day) if day >= read_from else None

    net: dict[tuple[str, int, date], int] = {}
    for shown, last_on, seen_on in swept:
        if last_on == seen_on:
            continue
        for (sku, price), stores in shown.items():
            if last_on is not None and last_on >= read_from:
                net[sku, price, last_on] = net.get((sku, price, last_on), 0) - stores
            if seen_on >= read_from:
                net[sku, price, seen_on] = net.get((sku, price, seen_on), 0) + stores
    for sku, old, new in changes:
        before, after = counted(sku, old), counted(sku, new)
        if before == after:
            continue
        if before is not None:
            net[before] = net.get(before, 0) - 1
        if after is not None:
            net[after] = net.get(after, 0) + 1
    return [PriceMove(sku, price, day, delta) for (sku, price, day), delta in net.items() if delta]


def day_ranges(moves: Iterable[PriceMove]) -> dict[tuple[str, date], tuple[int, int]]:
    """Return the lowest and highest price that moves count in, per product and day (leaving ones aside)."""
    ranges: dict[tuple[str, date], tuple[int, int]] = {}
    for move in moves:
        if move.delta <= 0:
            continue
        key, price = (move.sku, move.seen_on), move.price_cents
        lowest, highest = ranges.get(key, (price, price))
        ranges[key] = (min(lowest, price), max(highest, price))
    return ranges
