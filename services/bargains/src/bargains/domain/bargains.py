"""Bargains in one price history: real discounts, historical lows, illusory discounts and outliers.

The regular price is the one a store really charged for most of a reference period, counted in
calendar days a price was seen; a was-price the shop shows is never trusted as the regular price,
which is what tells a real special from a price raised just before its "discount".

What the label shows beside the price changes the answer only where it should: a multi-buy
("2 for $5") is an offer on several items, never a drop of the shelf price, so it is named in a
reason and not counted; a price for loyalty members only is a bargain of its own, labelled
"members only"; an item sold by weight is compared per kilogram, with prices sold the same way.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from bargains.domain.history import Segment, SoldBy

BargainKind = Literal["discount", "historical_low", "cross_chain"]
# The service flags outliers (see `is_outlier`) with the same type.
FlagKind = Literal["illusory", "outlier"]

OUTLIER_FACTOR = 3
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings that decide what counts as a bargain."""

    freshness: timedelta = timedelta(days=7)
    reference: timedelta = timedelta(days=28)
    # A price charged for less than this is not established as regular: a shelf price raised for a few
    # days before a "discount" must not become the price the discount is measured against.
    min_regular: timedelta = timedelta(days=7)
    min_discount: float = 0.10
    # A shown was-price this far above the price claims a discount, which the regular price must confirm.
    claimed_discount: float = 0.10
    lookback: timedelta = timedelta(days=90)
    min_history: timedelta = timedelta(days=14)


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Bargain:
    """A price worth showing, with what it is compared to and why."""

    kind: BargainKind
    price_cents: int
    reference_cents: int
    score: float
    reason: str
    observed_at: datetime
    members_only: bool = False


@dataclass(frozen=True, slots=True)
class Flag:
    """A price that must not be shown as a bargain, and why."""

    kind: FlagKind
    price_cents: int
    reference_cents: int
    reason: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Assessment:
    """The bargains and flags of one history's current price."""

    bargains: tuple[Bargain, ...] = ()
    flags: tuple[Flag, ...] = ()


NOTHING = Assessment()


class _Regular(NamedTuple):
    """A regular price and on how many days of its reference period it was charged."""

    price_cents: int
    days: int


def assess(history: tuple[Segment, ...], *, now: datetime, policy: Policy = DEFAULT_POLICY) -> Assessment:
    """Return the bargains and flags of a history's current price, or nothing when that price is stale."""
    if not history or now - history[-1].ends_at > policy.freshness:
        return Assessment()
    history = _sold_alike(history)
    if len(history) == 1:
        # A price never seen changed has nothing before it to be measured against: no regular
        # price, no raise behind a was-price, no earlier low. Most prices, so it is said early.
        return NOTHING
    current = history[-1]
    since = current.starts_at.date()
    regular = _regular(history, since, policy)
    was = current.was_price_cents
    if was is not None:
        # Too short a history to establish a regular price can still show the raise behind a was-price.
        reference = regular.price_cents if regular is not None else _price_before_raise(history, was, policy)
        if reference is not None and _is_illusory(current.price_cents, was, reference, policy):
            return Assessment(flags=(_illusory_flag(history, was, reference, since, policy),))
    shelf = _discount(current, regular, since, policy)
    members = None if shelf is not None else _members_discount(current, regular, since, policy)
    found = (shelf, members, _historical_low(history, policy))
    return Assessment(bargains=tuple(_noting_label(b, current) for b in found if b is not None))


def _sold_alike(history: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Return the newest segments sold the way the current price is: a per-kg price compares per kg."""
    sold_by = history[-1].label.sold_by
    start = len(history)
    while start > 0 and history[start - 1].label.sold_by == sold_by:
        start -= 1
    return history[start:]


def _noting_label(bargain: Bargain, current: Segment) -> Bargain:
    """Name in a bargain's reason what the label offers besides and that the bargain does not count."""
    label = current.label
    notes = []
    if label.multibuy_quantity is not None and label.multibuy_total_cents is not None:
        notes.append(
            f"multi-buy {label.multibuy_quantity} for {_money(label.multibuy_total_cents)} not counted"
        )
    if label.member_price_cents is not None and not bargain.members_only:
        notes.append(f"members pay {_price(label.member_price_cents, label.sold_by)}")
    if not notes:
        return bargain
    return replace(bargain, reason=f"{bargain.reason}; {'; '.join(notes)}")


def median(stores_by_price: Mapping[int, int]) -> float:
    """Return the median price over stores, given how many stores charge each price (cents)."""
    total = sum(stores_by_price.values())
    if total <= 0:
        raise ValueError("a median needs at least one store")
    prices = sorted(price for price, stores in stores_by_price.items() if stores > 0)

    def nth(k: int) -> int:
        """Return the k-th price (from 0) of all stores' prices in order."""
        seen = 0
        for price in prices:
            seen += stores_by_price[price]
            if k < seen:
                return price
        raise AssertionError("k is below the total")

    return (nth((total - 1) // 2) + nth(total // 2)) / 2


def may_be_outlier(price_cents: int, lowest_cents: int, highest_cents: int) -> bool:
    """Tell whether a price could be an outlier against a median anywhere between the lowest and highest.

    The median of the chain's prices lies between its lowest and highest, so a price within a
    factor of both ends cannot be an outlier whatever the median: most prices need no median.
    """
    return price_cents * OUTLIER_FACTOR < highest_cents or price_cents > lowest_cents * OUTLIER_FACTOR


def is_outlier(price_cents: int, median_cents: float) -> bool:
    """Tell whether a price is below a third or above three times the median: suspicious, never a bargain."""
    return price_cents * OUTLIER_FACTOR < median_cents or price_cents > median_cents * OUTLIER_FACTOR


def cross_chain(
    price_cents: int,
    other_chain_prices: Mapping[int, int],
    *,
    chains: int,
    observed_at: datetime,
    policy: Policy = DEFAULT_POLICY,
    sold_by: SoldBy = "each",
) -> Bargain | None:
    """Return a bargain when a price is well below the median current price of the product at other chains.

    `other_chain_prices` counts the stores of the other `chains` charging each price, sold the same
    way (`sold_by`) as this one.
    """
    if not any(other_chain_prices.values()):
        return None
    reference = median(other_chain_prices)
    if is_outlier(price_cents, reference):
        return None
    share = 1 - price_cents / reference
    if share < policy.min_discount:
        return None
    return Bargain(
        kind="cross_chain",
        price_cents=price_cents,
        reference_cents=round(reference),
        score=share,
        reason=(
            f"{_price(price_cents, sold_by)}, {share:.0%} below the median"
            f" {_price(round(reference), sold_by)}"
            f" at {chains} other chain{'' if chains == 1 else 's'}"
        ),
        observed_at=observed_at,
    )


def _regular(history: tuple[Segment, ...], before: date, policy: Policy) -> _Regular | None:
    """Return the price charged on most days of the reference period before a date, without specials."""
    start = before - timedelta(days=policy.reference.days)
    days_by_price: dict[int, int] = {}
    counted_until = start - ONE_DAY
    for segment in history:
        if segment.starts_at.date() >= before:
            break
        # A day two segments share counts once, for the earlier one.
        first = max(segment.starts_at.date(), counted_until + ONE_DAY)
        last = min(segment.ends_at.date(), before - ONE_DAY)
        if first > last:
            continue
        counted_until = last
        # A price shown with a was-price is a special, not what the store charges regularly.
        if segment.was_price_cents is None:
            days = (last - first).days + 1
            days_by_price[segment.price_cents] = days_by_price.get(segment.price_cents, 0) + days
    if not days_by_price:
        return None
    # On a tie the lower price is the regular one: a bargain must hold against either.
    price, days = max(days_by_price.items(), key=lambda item: (item[1], -item[0]))
    return _Regular(price, days) if days >= policy.min_regular.days else None


def _price_before_raise(history: tuple[Segment, ...], was: int, policy: Policy) -> int | None:
    """Return the shelf price before a was-price that was charged too briefly to be a regular price."""
    if len(history) < 3:
        return None
    before, raised = history[-3], history[-2]
    if before.was_price_cents is not None or raised.was_price_cents is not None or raised.price_cents != was:
        return None
    days_raised = (raised.ends_at.date() - raised.starts_at.date()).days + 1
    return before.price_cents if days_raised < policy.min_regular.days else None


def _is_illusory(price_cents: int, was_price_cents: int, regular_cents: int, policy: Policy) -> bool:
    """Tell whether a was-price claims a discount that the regular price does not bear out."""
    claimed = 1 - price_cents / was_price_cents >= policy.claimed_discount
    return claimed and 1 - price_cents / regular_cents < policy.min_discount


def _illusory_flag(
    history: tuple[Segment, ...], was: int, regular_cents: int, since: date, policy: Policy
) -> Flag:
    """Flag the current price as an illusory discount, naming the raised price its was-price comes from."""
    current = history[-1]
    start = since - timedelta(days=policy.reference.days)
    raised = [
        segment
        for segment in history[:-1]
        if segment.was_price_cents is None
        and segment.price_cents > regular_cents
        and segment.ends_at.date() >= start
    ]
    regular = f"the regular price was {_money(regular_cents)}"
    if not raised:
        claim = f"was {_money(was)} was not charged in the {policy.reference.days} days before {since}"
    elif raised[-1].price_cents == was:
        claim = f"was {_money(was)} is a price raised on {raised[-1].starts_at.date()}"
    else:
        claim = (
            f"was {_money(was)} follows a price raised to {_money(raised[-1].price_cents)}"
            f" on {raised[-1].starts_at.date()}"
        )
    return Flag(
        kind="illusory",
        price_cents=current.price_cents,
        reference_cents=regular_cents,
        reason=f"{claim}; {regular}",
        observed_at=current.ends_at,
    )


def _members_discount(
    current: Segment, regular: _Regular | None, since: date, policy: Policy
) -> Bargain | None:
    """Return a members-only bargain when the member price is well below the regular shelf price."""
    member = current.label.member_price_cents
    if regular is None or member is None:
        return None
    share = 1 - member / regular.price_cents
    if share < policy.min_discount:
        return None
    sold_by = current.label.sold_by
    return Bargain(
        kind="discount",
        price_cents=member,
        reference_cents=regular.price_cents,
        score=share,
        reason=(
            f"members only: {_price(member, sold_by)}, {share:.0%} below the"
            f" {_price(regular.price_cents, sold_by)} charged on {regular.days} of the"
            f" {policy.reference.days} days before {since};"
            f" everyone else pays {_price(current.price_cents, sold_by)}"
        ),
        observed_at=current.ends_at,
        members_only=True,
    )


def _discount(current: Segment, regular: _Regular | None, since: date, policy: Policy) -> Bargain | None:
    """Return a discount bargain when the current price is well below the regular price before it."""
    if regular is None:
        return None
    share = 1 - current.price_cents / regular.price_cents
    if share < policy.min_discount:
        return None
    sold_by = current.label.sold_by
    return Bargain(
        kind="discount",
        price_cents=current.price_cents,
        reference_cents=regular.price_cents,
        score=share,
        reason=(
            f"{_price(current.price_cents, sold_by)}, {share:.0%} below the"
            f" {_price(regular.price_cents, sold_by)} charged"
            f" on {regular.days} of the {policy.reference.days} days before {since}"
        ),
        observed_at=current.ends_at,
    )


def _historical_low(history: tuple[Segment, ...], policy: Policy) -> Bargain | None:
    """Return a historical-low bargain when the current price is below every earlier price in the lookback."""
    current = history[-1]
    if current.starts_at - history[0].starts_at < policy.min_history:
        return None
    window_start = current.starts_at - policy.lookback
    earlier = [segment.price_cents for segment in history[:-1] if segment.ends_at >= window_start]
    if not earlier or current.price_cents >= min(earlier):
        return None
    previous_low = min(earlier)
    share = 1 - current.price_cents / previous_low
    since = max(window_start, history[0].starts_at).date()
    sold_by = current.label.sold_by
    return Bargain(
        kind="historical_low",
        price_cents=current.price_cents,
        reference_cents=previous_low,
        score=share,
        reason=(
            f"{_price(current.price_cents, sold_by)}, the lowest since {since}:"
            f" {share:.0%} below the previous low of {_price(previous_low, sold_by)}"
        ),
        observed_at=current.ends_at,
    )


def _money(cents: int) -> str:
    """Format cents as dollars, like $3.25."""
    return f"${cents / 100:.2f}"


def _price(cents: int, sold_by: SoldBy) -> str:
    """Format a shelf price: $3.25, or $3.25/kg for an item sold by weight."""
    return f"{_money(cents)}/kg" if sold_by == "kg" else _money(cents)
