"""Verdicts of a grouping cycle: a member's health check, and an anchor whose prices moved.

A member whose new prices went quiet is compared with its anchor. The anchor's prices must
be fresh to judge it by; then the member needs enough common prices, and the domain's match
rule (`grouping.counts_match`) tells whether it still charges what its anchor charges.
"""

from datetime import datetime
from enum import StrEnum

from grouping.domain.grouping import counts_match
from grouping.domain.policy import GroupingPolicy


class Verdict(StrEnum):
    """What a member's health check concludes."""

    STALE_ANCHOR = "stale_anchor"
    """The anchor's prices are too old to judge by: judge nothing, ask once for its re-scrape."""
    TOO_FEW_PRICES = "too_few_prices"
    """Too few common prices to judge: prune the rows equal to the anchor's, wait for more."""
    VERIFIED = "verified"
    """The member still charges its anchor's prices: prune its copies of them."""
    SPLIT = "split"
    """The member charges other prices now: take it out of its group."""


def anchor_is_stale(
    *, anchor_seen: datetime | None, member_seen: datetime, now: datetime, policy: GroupingPolicy
) -> bool:
    """Tell whether an anchor's newest price is too old to judge a member's new prices by.

    Too old means out of the freshness window, or older than the member's newest price by
    more than the allowed lag (the member was scraped, its anchor not for a day).
    """
    return (
        anchor_seen is None
        or anchor_seen < policy.fresh_since(now)
        or anchor_seen < member_seen - policy.anchor_lag
    )


def judge_prices(*, common: int, equal: int, policy: GroupingPolicy) -> Verdict:
    """Judge a member by its prices common with a fresh anchor's, and how many of those are equal."""
    if common < policy.min_common:
        return Verdict.TOO_FEW_PRICES
    if counts_match(common, equal, min_share=policy.min_share, min_common=policy.min_common):
        return Verdict.VERIFIED
    return Verdict.SPLIT


def anchor_moved(*, compared: int, changed: int, policy: GroupingPolicy) -> bool:
    """Tell whether an anchor's new prices differ from its previous ones enough to call it another store.

    A week's specials change a share of a store's prices; a move to another pricing zone
    changes most of them. Too few compared prices tell nothing.
    """
    return compared >= policy.min_common and changed >= policy.anchor_moved_share * compared
