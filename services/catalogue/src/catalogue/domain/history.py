"""Change-only price history: runs of an unchanged price, built in any order of arrival."""

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of one price at one store, from its first to its last sighting."""

    starts_at: datetime
    ends_at: datetime
    price_cents: int
    was_price_cents: int | None

    def same_price(self, price_cents: int, was_price_cents: int | None) -> bool:
        """Tell whether a sighting shows this run's price."""
        return (self.price_cents, self.was_price_cents) == (price_cents, was_price_cents)


def fold(
    segments: tuple[Segment, ...], *, price_cents: int, was_price_cents: int | None, observed_at: datetime
) -> tuple[Segment, ...]:
    """Add one sighting to a history (oldest run first); a duplicate or a known price changes nothing.

    A sighting may arrive late: it extends the run it belongs to, joins the runs either side
    when it bridges them, or splits a run it contradicts.
    """
    price = (price_cents, was_price_cents)
    if segments and observed_at > segments[-1].ends_at:
        # The usual case, a sighting newer than every run: only the last run is looked at.
        last = segments[-1]
        if last.same_price(*price):
            # Built directly rather than by dataclasses.replace: this runs once per price folded.
            extended = Segment(last.starts_at, observed_at, last.price_cents, last.was_price_cents)
            return (*segments[:-1], extended)
        return (*segments, Segment(observed_at, observed_at, *price))
    before = [s for s in segments if s.ends_at < observed_at]
    after = [s for s in segments if s.starts_at > observed_at]
    inside = [s for s in segments if s.starts_at <= observed_at <= s.ends_at]
    if inside:
        run = inside[0]
        if run.same_price(*price) or observed_at in (run.starts_at, run.ends_at):
            # Two sightings at one instant that disagree: the first one kept stands.
            return segments
        head = replace(run, ends_at=run.starts_at)
        tail = replace(run, starts_at=run.ends_at)
        new = Segment(observed_at, observed_at, *price)
        return (*before, head, new, tail, *after)
    prev = before[-1] if before else None
    nxt = after[0] if after else None
    if prev and nxt and prev.same_price(*price) and nxt.same_price(*price):
        return (*before[:-1], replace(prev, ends_at=nxt.ends_at), *after[1:])
    if prev and prev.same_price(*price):
        return (*before[:-1], replace(prev, ends_at=observed_at), *after)
    if nxt and nxt.same_price(*price):
        return (*before, replace(nxt, starts_at=observed_at), *after[1:])
    return (*before, Segment(observed_at, observed_at, *price), *after)
