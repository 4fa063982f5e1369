"""The pure bargain logic: compact histories, regular prices, discounts, illusory discounts and lows."""

import functools
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from bargains.domain.bargains import (
    DEFAULT_POLICY,
    Assessment,
    Policy,
    assess,
    cross_chain,
    is_outlier,
    may_be_outlier,
    median,
)
from bargains.domain.history import PriceMove, Segment, day_ranges, fold, tally_moves
from simulator.world import World, WorldConfig

pytestmark = pytest.mark.unit

# Day 0 of the world, at noon UTC, when the test scrapes every product.
NOON_DAY_0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
GROUND_TRUTH_DAYS = (16, 23, 30)
MIN_PRECISION = MIN_RECALL = 0.95
MIN_ILLUSORY_FLAGGED = 0.90

History = tuple[Segment, ...]


EVERY_DAY = date.min
"""A window that reaches back to the first day: every move counts."""


def _at(day: float) -> datetime:
    """Return the time of a day of the world, counting from day 0 at noon."""
    return NOON_DAY_0 + timedelta(days=day)


def _daily(prices: Sequence[tuple[int, int | None]], first_day: int = 0) -> History:
    """Fold one (price, was-price) observation a day, from a first day on."""
    history: History = ()
    for day, (price, was) in enumerate(prices, start=first_day):
        history = fold(history, price_cents=price, was_price_cents=was, observed_at=_at(day))
    return history


# --- history ---------------------------------------------------------------------------------


def test_a_segment_starts_only_when_the_price_or_the_was_price_changes() -> None:
    history = _daily([(400, None)] * 3 + [(300, 400)] * 2 + [(300, None)] + [(400, None)] * 2)

    assert [(segment.price_cents, segment.was_price_cents) for segment in history] == [
        (400, None),
        (300, 400),
        (300, None),
        (400, None),
    ]
    assert (history[0].starts_at, history[0].ends_at) == (_at(0), _at(2))
    assert (history[-1].starts_at, history[-1].ends_at) == (_at(6), _at(7))


def test_older_and_duplicate_observations_change_nothing() -> None:
    history = _daily([(400, None), (400, None), (350, 400)])

    for day, price in ((2, 350), (2, 999), (1, 100), (-5, 400)):
        assert fold(history, price_cents=price, was_price_cents=None, observed_at=_at(day)) == history


def test_replaying_in_order_equals_incremental_processing_and_late_older_ones_are_dropped() -> None:
    rng = random.Random(3)
    observations = [(_at(day), rng.choice((300, 400)), rng.choice((None, 450))) for day in range(40)]

    def replay(ordered: list[tuple[datetime, int, int | None]]) -> History:
        return functools.reduce(
            lambda history, seen: fold(
                history, price_cents=seen[1], was_price_cents=seen[2], observed_at=seen[0]
            ),
            ordered,
            (),
        )

    # A consumer keeps the projection between batches of events; a replay folds the whole log at once.
    incremental: History = ()
    for start in range(0, len(observations), 7):
        incremental = functools.reduce(
            lambda history, seen: fold(
                history, price_cents=seen[1], was_price_cents=seen[2], observed_at=seen[0]
            ),
            observations[start : start + 7],
            incremental,
        )
    assert incremental == replay(observations)
    assert replay(observations + observations) == replay(observations)  # replaying twice is idempotent

    # Older observations arriving late are dropped: the result is that of the newest-so-far ones in order.
    arrival = observations[:20] + observations[5:15] + observations[20:] + observations[:3]
    assert replay(arrival) == replay(observations)


# --- regular price and discounts ---------------------------------------------------------------


def test_the_regular_price_is_the_one_charged_on_most_days_without_specials() -> None:
    def reference(prices: Sequence[tuple[int, int | None]]) -> int | None:
        """Return what a discount on the last day is measured against, if there is one."""
        found = assess(_daily(prices), now=_at(len(prices) - 1), policy=Policy()).bargains
        return next((b.reference_cents for b in found if b.kind == "discount"), None)

    assert reference([(400, None)] * 20 + [(500, None)] * 5 + [(250, 400)] * 7 + [(320, 400)]) == 400
    # A price charged for fewer than 7 days is not established as regular.
    assert reference([(400, None)] * 6 + [(300, None)]) is None
    assert reference([(400, None)] * 7 + [(300, None)]) == 400
    assert reference([(400, None)] * 2 + [(500, None)] * 5 + [(300, None)]) is None


def test_a_real_special_is_a_discount_with_its_reason() -> None:
    history = _daily([(400, None)] * 28 + [(325, 400)] * 2)

    (bargain,) = [b for b in assess(history, now=_at(29)).bargains if b.kind == "discount"]

    assert (bargain.price_cents, bargain.reference_cents) == (325, 400)
    assert bargain.score == pytest.approx(0.1875)
    assert bargain.reason == "$3.25, 19% below the $4.00 charged on 28 of the 28 days before 2026-11-30"
    assert bargain.observed_at == _at(29)


def test_a_was_price_raised_just_before_is_flagged_illusory_not_listed() -> None:
    history = _daily([(400, None)] * 23 + [(500, None)] * 5 + [(395, 500)] * 3)

    assessment = assess(history, now=_at(30))

    assert assessment.bargains == ()
    (flag,) = assessment.flags
    assert (flag.kind, flag.price_cents, flag.reference_cents) == ("illusory", 395, 400)
    assert flag.reason == "was $5.00 is a price raised on 2026-11-25; the regular price was $4.00"


def test_a_short_raise_before_a_was_price_is_illusory_even_on_a_short_history() -> None:
    history = _daily([(400, None)] * 2 + [(500, None)] * 5 + [(395, 500)])

    assessment = assess(history, now=_at(7))

    assert assessment.bargains == ()
    assert [(flag.kind, flag.reference_cents) for flag in assessment.flags] == [("illusory", 400)]


def test_a_was_price_charged_for_weeks_is_not_illusory() -> None:
    history = _daily([(500, None)] * 20 + [(395, 500)])

    assessment = assess(history, now=_at(20))

    assert assessment.flags == ()
    assert [bargain.kind for bargain in assessment.bargains] == ["discount", "historical_low"]


def test_a_price_never_seen_changed_is_neither_a_bargain_nor_flagged() -> None:
    # A month of one price shown with a high was-price: nothing before it to measure against.
    month = _daily([(300, 600)] * 30)
    lenient = Policy(min_history=timedelta(0), min_regular=timedelta(0), claimed_discount=0.01)

    assert len(month) == 1
    assert assess(month, now=_at(29)) == assess(month, now=_at(29), policy=lenient) == Assessment()
    # Measured against the run before it, the same price is both a discount and a low.
    changed = _daily([(400, None)] * 20 + [(300, None)] * 10)
    assert [b.kind for b in assess(changed, now=_at(29)).bargains] == ["discount", "historical_low"]


def test_no_bargain_rests_on_a_price_older_than_the_freshness_window() -> None:
    history = _daily([(400, None)] * 28 + [(300, 400)] * 2)

    assert assess(history, now=_at(29 + 7)).bargains
    assert assess(history, now=_at(29 + 7.01)).bargains == ()
    assert assess(history, now=_at(29 + 30), policy=Policy(freshness=timedelta(days=31))).bargains


# --- historical low, cross-chain and outliers ------------------------------------------------------


def test_a_historical_low_is_below_every_earlier_price_in_the_lookback() -> None:
    history = _daily([(400, None)] * 10 + [(360, 400)] * 5 + [(400, None)] * 10 + [(340, None)])

    (low,) = [b for b in assess(history, now=_at(25)).bargains if b.kind == "historical_low"]

    assert (low.price_cents, low.reference_cents) == (340, 360)
    assert low.score == pytest.approx(1 - 340 / 360)
    assert low.reason == "$3.40, the lowest since 2026-11-02: 6% below the previous low of $3.60"


def test_no_historical_low_on_a_short_history_an_equal_price_or_an_old_low() -> None:
    def lows(history: History, now: float, policy: Policy = DEFAULT_POLICY) -> list[str]:
        return [
            b.kind
            for b in assess(history, now=_at(now), policy=policy).bargains
            if b.kind == "historical_low"
        ]

    assert lows(_daily([(400, None)] * 10 + [(300, None)]), 10) == []  # under 14 days of history
    assert lows(_daily([(400, None)] * 10 + [(340, None)] * 10 + [(340, None)]), 20) == []
    assert lows(_daily([(400, None)] * 10 + [(340, None)] * 10 + [(400, None)] * 5 + [(340, None)]), 25) == []
    # An old low before the lookback no longer counts.
    short = Policy(lookback=timedelta(days=10))
    assert lows(_daily([(300, None)] * 5 + [(400, None)] * 20 + [(350, None)]), 25, short) == [
        "historical_low"
    ]


def test_cross_chain_is_a_bargain_well_below_the_other_chains_median() -> None:
    # Five stores at two other chains: 400 at two, 420 at one, 380 at two.
    others = {400: 2, 420: 1, 380: 2}
    bargain = cross_chain(300, others, chains=2, observed_at=_at(0), policy=Policy())

    assert bargain is not None
    assert (bargain.kind, bargain.reference_cents) == ("cross_chain", 400)
    assert bargain.score == pytest.approx(0.25)
    assert bargain.reason == "$3.00, 25% below the median $4.00 at 2 other chains"
    assert cross_chain(370, others, chains=2, observed_at=_at(0)) is None  # 7.5% is not enough
    assert cross_chain(300, {}, chains=0, observed_at=_at(0)) is None
    assert cross_chain(300, {400: 0}, chains=1, observed_at=_at(0)) is None  # no store charges it now
    assert cross_chain(100, {400: 1, 420: 1}, chains=1, observed_at=_at(0)) is None  # an outlier


def test_an_outlier_is_below_a_third_or_above_three_times_the_median() -> None:
    assert median({100: 1, 400: 1, 300: 1, 200: 1}) == 250.0
    assert is_outlier(99, 300.0)
    assert not is_outlier(100, 300.0)
    assert not is_outlier(900, 300.0)
    assert is_outlier(901, 300.0)


def test_a_price_within_a_factor_of_the_lowest_and_highest_is_never_an_outlier() -> None:
    # The median is read only for prices that could be outliers: the bound must never miss one.
    rng = random.Random(5)
    for _ in range(2_000):
        counts = {rng.randrange(10, 2_000): rng.randrange(1, 4) for _ in range(rng.randrange(1, 9))}
        price = rng.randrange(1, 7_000)
        if is_outlier(price, median(counts)):
            assert may_be_outlier(price, min(counts), max(counts))
    assert not may_be_outlier(300, 100, 900)  # 3 x 300 reaches the highest, 300 = 3 x the lowest
    assert may_be_outlier(299, 100, 900)
    assert may_be_outlier(301, 100, 900)


# --- against the world's ground truth ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    """How well one day's assessments match the world's specials."""

    precision: float
    recall: float
    illusory_flagged: float
    true_specials: int
    illusory_specials: int


@functools.cache
def _ground_truth_scores() -> dict[int, Scores]:
    """Scrape one store per zone at noon every day, fold, and score each assessment day's findings."""
    world = World.build(WorldConfig())
    histories: dict[tuple[str, str, str], History] = {}
    stores = {
        (chain.slug, zone): store_ids[0]
        for chain in world.chains
        for zone, store_ids in world.zones(chain.slug).items()
    }
    scores = {}
    for day in range(max(GROUND_TRUTH_DAYS) + 1):
        for (chain, zone), store_id in stores.items():
            for product in world.products(chain):
                key = (chain, zone, product.sku)
                price = world.price(chain, store_id, product.sku, day)
                histories[key] = fold(
                    histories.get(key, ()),
                    price_cents=price.price_cents,
                    was_price_cents=price.was_price_cents,
                    observed_at=_at(day),
                )
        if day in GROUND_TRUTH_DAYS:
            scores[day] = _score(world, day, histories)
    return scores


def _score(world: World, day: int, histories: dict[tuple[str, str, str], History]) -> Scores:
    """Compare the discounts and illusory flags of a day with the world's specials of that day."""
    assessments = {key: assess(history, now=_at(day)) for key, history in histories.items()}
    discounts = {
        key for key, found in assessments.items() if any(b.kind == "discount" for b in found.bargains)
    }
    flagged = {key for key, found in assessments.items() if any(f.kind == "illusory" for f in found.flags)}
    specials = world.specials(day)
    true = {(s.chain, s.zone, s.sku) for s in specials if s.kind == "true"}
    illusory = {(s.chain, s.zone, s.sku) for s in specials if s.kind == "illusory"}
    return Scores(
        precision=len(discounts & true) / len(discounts),
        recall=len(discounts & true) / len(true),
        illusory_flagged=len((flagged - discounts) & illusory) / len(illusory),
        true_specials=len(true),
        illusory_specials=len(illusory),
    )


@pytest.mark.parametrize("day", GROUND_TRUTH_DAYS)
def test_true_specials_are_found_and_illusory_ones_flagged(day: int) -> None:
    scores = _ground_truth_scores()[day]
    print(f"day {day}: {scores}")

    assert scores.true_specials > 0
    assert scores.illusory_specials > 0
    assert scores.precision >= MIN_PRECISION
    assert scores.recall >= MIN_RECALL
    assert scores.illusory_flagged >= MIN_ILLUSORY_FLAGGED


@pytest.mark.parametrize("seed", range(20))
def test_the_median_of_counted_prices_is_the_median_of_every_store(seed: int) -> None:
    rng = random.Random(seed)
    counts = {rng.randrange(100, 110): rng.randrange(0, 4) for _ in range(rng.randrange(1, 6))}
    counts[rng.randrange(100, 110)] = 1 + rng.randrange(3)  # at least one store
    every_store = [price for price, stores in counts.items() for _ in range(stores)]

    assert median(counts) == statistics.median(every_store)


def test_a_median_of_no_store_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one store"):
        median({300: 0})


def test_a_store_moves_between_counts_only_when_its_price_or_day_changes() -> None:
    monday, later_monday, tuesday = _at(0), _at(0) + timedelta(hours=5), _at(1)
    first = (Segment(300, None, monday, monday),)
    same_day = (Segment(300, None, monday, later_monday),)
    next_day = (Segment(300, None, monday, tuesday),)
    cheaper = (*first, Segment(250, 300, tuesday, tuesday))

    assert tally_moves([("milk", (), first)], read_from=EVERY_DAY) == [
        PriceMove("milk", 300, monday.date(), 1)
    ]
    assert tally_moves([("milk", first, same_day)], read_from=EVERY_DAY) == []
    assert tally_moves([("milk", first, next_day)], read_from=EVERY_DAY) == [
        PriceMove("milk", 300, monday.date(), -1),
        PriceMove("milk", 300, tuesday.date(), 1),
    ]
    assert tally_moves([("milk", next_day, cheaper)], read_from=EVERY_DAY) == [
        PriceMove("milk", 300, tuesday.date(), -1),
        PriceMove("milk", 250, tuesday.date(), 1),
    ]


def test_many_stores_moving_alike_are_summed_and_moves_that_cancel_out_left_out() -> None:
    monday, tuesday = _at(0), _at(1)
    on_monday = (Segment(300, None, monday, monday),)
    on_tuesday = (Segment(300, None, monday, tuesday),)
    cheaper = (Segment(250, None, monday, monday),)
    # Three stores seen again a day later, one new store, one leaving 250 for 300 on Monday
    # while another goes the other way: those two cancel out.
    changes = [("milk", on_monday, on_tuesday)] * 3 + [
        ("milk", (), on_monday),
        ("milk", cheaper, on_monday),
        ("milk", on_monday, cheaper),
    ]
    assert tally_moves(changes, read_from=EVERY_DAY) == [
        PriceMove("milk", 300, monday.date(), -2),
        PriceMove("milk", 300, tuesday.date(), 3),
    ]


def test_moves_on_days_no_median_reads_any_more_are_left_out() -> None:
    monday, tuesday = _at(0), _at(1)
    on_monday = (Segment(300, None, monday, monday),)
    on_tuesday = (Segment(300, None, monday, tuesday),)
    cheaper_on_monday = (Segment(250, None, monday, monday),)
    # Monday is out of the window: a price stale on arrival is not counted, a store seen again
    # on Tuesday only joins Tuesday's count, a change within Monday moves nothing.
    changes = [
        ("milk", (), on_monday),
        ("milk", on_monday, on_tuesday),
        ("milk", on_monday, cheaper_on_monday),
    ]
    assert tally_moves(changes, read_from=tuesday.date()) == [PriceMove("milk", 300, tuesday.date(), 1)]
    assert tally_moves(changes, read_from=monday.date()) == [
        PriceMove("milk", 300, monday.date(), -1),
        PriceMove("milk", 300, tuesday.date(), 1),
        PriceMove("milk", 250, monday.date(), 1),
    ]


def test_day_ranges_hold_the_prices_counted_in_per_product_and_day() -> None:
    monday, tuesday = date(2026, 11, 23), date(2026, 11, 24)
    moves = [
        PriceMove("a", 300, monday, 1),
        PriceMove("a", 250, monday, 2),
        PriceMove("a", 100, monday, -1),  # a store leaving a price does not bound the day
        PriceMove("a", 500, tuesday, 1),
        PriceMove("b", 90, monday, 0),
    ]
    assert day_ranges(moves) == {("a", monday): (250, 300), ("a", tuesday): (500, 500)}


def test_pages_seen_again_move_their_counts_as_their_histories_would() -> None:
    last, today = datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC)
    stores = [{"milk": 400, "tea": 300}, {"milk": 400, "tea": 310}, {"milk": 380, "tea": 300}]

    def run(price: int, seen_at: datetime) -> tuple[Segment, ...]:
        return (Segment(price, None, last - timedelta(days=30), seen_at),)

    changes = [(sku, run(price, last), run(price, today)) for shelf in stores for sku, price in shelf.items()]
    firsts = [(sku, (), run(price, today)) for shelf in stores for sku, price in shelf.items()]
    shown: dict[tuple[str, int], int] = {}
    for shelf in stores:
        for sku_price in shelf.items():
            shown[sku_price] = shown.get(sku_price, 0) + 1
    for read_from in (last.date(), today.date(), today.date() + timedelta(days=1)):
        again = tally_moves([], read_from=read_from, swept=[(shown, last.date(), today.date())])
        assert sorted(again, key=repr) == sorted(tally_moves(changes, read_from=read_from), key=repr)
        first = tally_moves([], read_from=read_from, swept=[(shown, None, today.date())])
        assert sorted(first, key=repr) == sorted(tally_moves(firsts, read_from=read_from), key=repr)
    assert tally_moves([], read_from=last.date(), swept=[(shown, today.date(), today.date())]) == []
    # Summed with the changes of the batch's histories: a store leaving what another joins moves nothing.
    changed = [("milk", run(300, last), run(400, last))]  # a store now at 400 on the day before
    moved = tally_moves(
        changed, read_from=last.date(), swept=[({("milk", 400): 1}, last.date(), today.date())]
    )
    assert sorted(moved, key=repr) == [
        PriceMove("milk", 300, last.date(), -1),
        PriceMove("milk", 400, today.date(), 1),
    ]
