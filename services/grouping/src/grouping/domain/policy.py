"""The rules a grouping cycle judges by: the match rule, freshness, and how long to wait."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class GroupingPolicy:
    """The match rule and the times that decide when stores are judged."""

    min_share: float
    """Share of equal prices, over the common products, that makes two stores match."""
    min_common: int
    """Common products needed to compare two stores."""
    anchor_moved_share: float
    """Share of an anchor's prices changed in one scrape that re-checks its members."""
    freshness: timedelta
    """Prices older than this do not count."""
    anchor_lag: timedelta
    """An anchor this much older than its member's new prices is stale."""
    quiet: timedelta
    """Wait after a store's last prices before judging it."""
    regroup_busy_every: timedelta
    """Regroup a chain whose prices never pause at least this often."""

    def fresh_since(self, now: datetime) -> datetime:
        """Return the oldest time a price may have been observed at to count."""
        return now - self.freshness

    def quiet_before(self, now: datetime) -> datetime:
        """Return the time a store's prices must have arrived before for it to be judged."""
        return now - self.quiet
