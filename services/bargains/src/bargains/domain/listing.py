"""What a store's product lists: its bargains and flags, and how a listing changes.

A product's current price is judged against its own history (discounts, historical lows,
illusory discounts), its chain's median (outliers) and the same product at other chains
(cross-chain bargains). Comparing what is listed with what should be gives the changes
announced in BargainsChanged.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bargains.domain.bargains import BargainKind, FlagKind, Policy, assess, cross_chain, is_outlier
from bargains.domain.history import Segment
from contracts.events.v1 import MAX_OBSERVATIONS, Bargain, BargainChange, BargainsChangedPayload

ChangeKind = Literal["appeared", "changed", "expired"]

Key = tuple[str, str]
"""A product at a store of a chain: (store_id, sku)."""


@dataclass(frozen=True, slots=True)
class ListedBargain:
    """A bargain as listed: a product's price at a store, what it is compared with, and why."""

    bargain_id: str
    chain: str
    store_id: str
    sku: str
    category: str | None
    kind: BargainKind
    price_cents: int
    reference_cents: int
    score: float
    reason: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class FlaggedPrice:
    """A store's price that looks like a bargain and is not, with the reason."""

    store_id: str
    sku: str
    kind: FlagKind
    reason: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class OtherChains:
    """A product's current prices at other chains: how many stores charge each, over how many chains."""

    stores_by_price: Mapping[int, int]
    chains: int


@dataclass(frozen=True, slots=True)
class Listing:
    """The bargains and flags of one product at one store."""

    bargains: tuple[ListedBargain, ...] = ()
    flags: tuple[FlaggedPrice, ...] = ()


NOTHING = Listing()


@dataclass(frozen=True, slots=True)
class Change:
    """A bargain that appeared, changed or expired."""

    kind: ChangeKind
    bargain: ListedBargain


MEMBERS_ONLY = "members"
"""The id prefix of a members-only discount: its kind stays `discount`, its id and reason say whose."""


def bargain_id(kind: str, chain: str, store_id: str, sku: str) -> str:
    """Return the id of a kind of bargain on a product at a store: one of each at most."""
    return f"{kind}:{chain}:{store_id}:{sku}"


def listing_of(
    chain: str,
    store_id: str,
    sku: str,
    history: tuple[Segment, ...],
    *,
    category: str | None,
    chain_median: float | None,
    elsewhere: OtherChains | None,
    now: datetime,
    policy: Policy,
) -> Listing:
    """Judge a product's current price at a store: its bargains, or why it is none."""
    latest = history[-1]
    if chain_median is not None and is_outlier(latest.price_cents, chain_median):
        # Suspicious, never a bargain: likely a typo or a unit mix-up at the shop.
        reason = f"suspicious: {latest.price_cents} cents against a median of {chain_median:.0f} cents"
        return Listing(flags=(FlaggedPrice(store_id, sku, "outlier", reason, latest.ends_at),))
    assessment = assess(history, now=now, policy=policy)
    if elsewhere is None and not assessment.bargains and not assessment.flags:
        return NOTHING  # most prices: no Listing built per price
    found = list(assessment.bargains)
    if elsewhere is not None and not assessment.flags:
        cheaper = cross_chain(
            latest.price_cents,
            elsewhere.stores_by_price,
            chains=elsewhere.chains,
            observed_at=latest.ends_at,
            policy=policy,
            sold_by=latest.label.sold_by,
        )
        found += [cheaper] if cheaper else []
    return Listing(
        bargains=tuple(
            ListedBargain(
                bargain_id=bargain_id(MEMBERS_ONLY if b.members_only else b.kind, chain, store_id, sku),
                chain=chain,
                store_id=store_id,
                sku=sku,
                category=category,
                kind=b.kind,
                price_cents=b.price_cents,
                reference_cents=b.reference_cents,
                score=b.score,
                reason=b.reason,
                observed_at=b.observed_at,
            )
            for b in found
        ),
        flags=tuple(FlaggedPrice(store_id, sku, f.kind, f.reason, f.observed_at) for f in assessment.flags),
    )


def listings_of(
    chain: str,
    histories: Mapping[Key, tuple[Segment, ...]],
    *,
    categories: Mapping[Key, str | None],
    medians: Mapping[str, float],
    others: Mapping[str, OtherChains],
    now: datetime,
    policy: Policy,
) -> Listing:
    """Judge the current prices of products at stores of a chain, given the chain's medians and others'."""
    # A price never seen changed, with no median or other chain to judge it against, lists nothing
    # (`assess`): most prices of a scrape, so they are passed over without a call.
    found = [
        listing
        for (store, sku), history in histories.items()
        if (len(history) > 1 or sku in medians or sku in others)
        and (
            listing := listing_of(
                chain,
                store,
                sku,
                history,
                category=categories.get((store, sku)),
                chain_median=medians.get(sku),
                elsewhere=others.get(sku),
                now=now,
                policy=policy,
            )
        )
        is not NOTHING
    ]
    return Listing(
        bargains=tuple(b for listing in found for b in listing.bargains),
        flags=tuple(f for listing in found for f in listing.flags),
    )


def changes_between(
    current: Mapping[str, ListedBargain], desired: Mapping[str, ListedBargain]
) -> list[Change]:
    """Compare listed and wanted bargains: appeared, changed and expired ones."""
    out: list[Change] = []
    for key, wanted in desired.items():
        had = current.get(key)
        if had is None:
            out.append(Change("appeared", wanted))
        elif (had.price_cents, had.reference_cents, had.reason) != (
            wanted.price_cents,
            wanted.reference_cents,
            wanted.reason,
        ):
            out.append(Change("changed", wanted))
    out += [Change("expired", had) for key, had in current.items() if key not in desired]
    return out


def payloads_for(changes: Sequence[Change]) -> list[BargainsChangedPayload]:
    """Group changes into BargainsChanged payloads, one per store (chunked), in order."""
    by_store: dict[tuple[str, str], list[BargainChange]] = defaultdict(list)
    for change in changes:
        b = change.bargain
        bargain = Bargain(
            bargain_id=b.bargain_id,
            kind=b.kind,
            chain=b.chain,
            store_id=b.store_id,
            sku=b.sku,
            price_cents=b.price_cents,
            reference_cents=b.reference_cents,
            score=min(1.0, max(0.0, float(b.score))),
            reason=b.reason[:500],
            observed_at=b.observed_at,
        )
        by_store[(b.chain, b.store_id)].append(BargainChange(change=change.kind, bargain=bargain))
    return [
        BargainsChangedPayload(
            chain=chain, store_id=store_id, changes=tuple(items[start : start + MAX_OBSERVATIONS])
        )
        for (chain, store_id), items in by_store.items()
        for start in range(0, len(items), MAX_OBSERVATIONS)
    ]
