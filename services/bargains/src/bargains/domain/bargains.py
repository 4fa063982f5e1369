"""Bargains in one price history: real discounts, historical lows, illusory discounts and outliers.

The regular price is the one a store really charged for most of a reference period, counted in
calendar days a price was seen; a was-price the shop shows is never trusted as the regular price,
which is what tells a real special from a price raised just before its "discount".
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from bargains.domain.history import Segment

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


class _Regular(NamedTuple):
    """A regular price and on how many days of its reference period it was charged."""

    price_cents: int
    days: int


def assess(history: tuple[Segment, ...], *, now: datetime, policy: Policy = DEFAULT_POLICY) -> Assessment:
    """Return the bargains and flags of a history's current price, or nothing when that price is stale."""
    if not history or now - history[-1].ends_at > policy.freshness:
        return Assessment()
    current = history[-1]
    since = current.starts_at.date()
    regular = _regular(history, since, policy)
    was = current.was_price_cents
    if was is not None:
        # Too short a history to establish a regular price can still show the raise behind a was-price.
        reference = regular.price_cents if regular is not None else _price_before_raise(history, was, policy)
        if reference is not None and _is_illusory(current.price_cents, was, reference, policy):
            return Assessment(flags=(_illusory_flag(history, was, reference, since, policy),))
    found = (_discount(current, regular, since, policy), _historical_low(history, policy))
    return Assessment(bargains=tuple(bargain for bargain in found if bargain is not None))


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
) -> Bargain | None:
    """Return a bargain when a price is well below the median current price of the product at other chains.

    `other_chain_prices` counts the stores of the other `chains` charging each price.
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
            f"{_money(price_cents)}, {share:.0%} below the median {_money(round(reference))}"
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


def _discount(current: Segment, regular: _Regular | None, since: date, policy: Policy) -> Bargain | None:
    """Return a discount bargain when the current price is well below the regular price before it."""
    if regular is None:
        return None
    share = 1 - current.price_cents / regular.price_cents
    if share < policy.min_discount:
        return None
    return Bargain(
        kind="discount",
        price_cents=current.price_cents,
        reference_cents=regular.price_cents,
        score=share,
        reason=(
            f"{_money(current.price_cents)}, {share:.0%} below the {_money(regular.price_cents)} charged"
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
    return Bargain(
        kind="historical_low",
        price_cents=current.price_cents,
        reference_cents=previous_low,
        score=share,
        reason=(
            f"{_money(current.price_cents)}, the lowest since {since}:"
            f" {share:.0%} below the previous low of {_money(previous_low)}"
        ),
        observed_at=current.ends_at,
    )


def _money(cents: int) -> str:
    """Format cents as dollars, like $3.25."""
    return f"${cents / 100:.2f}"
