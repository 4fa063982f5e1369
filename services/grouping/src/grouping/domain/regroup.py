"""When to regroup a chain: new prices since the last regroup, and the chain quiet or waited long enough."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from grouping.domain.policy import GroupingPolicy


def due_for_regroup(
    *,
    latest: datetime,
    regrouped_at: datetime | None,
    waiting_since: datetime,
    now: datetime,
    quiet: timedelta,
    longest_wait: timedelta,
) -> bool:
    """Tell whether a chain is due a regroup: new prices since the last, and quiet or waited long enough.

    Waiting for a quiet chain spares regroups in the middle of its scrape; a chain that is
    never quiet (scraped without a pause) is still regrouped now and then, with its stores
    that have gone quiet.
    """
    if regrouped_at is not None and regrouped_at > latest:
        return False
    return latest < now - quiet or now - (regrouped_at or waiting_since) >= longest_wait


@dataclass
class RegroupMemory:
    """When each chain was last regrouped, kept in memory by the one loop that regroups."""

    regrouped_at: dict[str, datetime] = field(default_factory=dict)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    """When a chain not regrouped yet was first seen: a busy chain's wait counts from there."""

    def due(self, chain: str, *, latest: datetime, now: datetime, policy: GroupingPolicy) -> bool:
        """Tell whether a chain whose newest prices arrived at `latest` is due a regroup now."""
        return due_for_regroup(
            latest=latest,
            regrouped_at=self.regrouped_at.get(chain),
            waiting_since=self.first_seen.setdefault(chain, now),
            now=now,
            quiet=policy.quiet,
            longest_wait=policy.regroup_busy_every,
        )

    def regrouped(self, chain: str, *, at: datetime) -> None:
        """Remember that a chain was regrouped."""
        self.regrouped_at[chain] = at
