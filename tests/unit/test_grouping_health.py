"""The grouping cycle's verdicts: stale anchor, too few prices, verified, split, moved anchor, regroup."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from grouping.domain.health import Verdict, anchor_is_stale, anchor_moved, judge_prices
from grouping.domain.regroup import RegroupMemory
from tests.fakes.grouping import POLICY

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor_seen", "member_seen", "stale"),
    [
        (None, NOW, True),  # the anchor never sent a price
        (NOW - timedelta(hours=1), NOW, False),
        (NOW - timedelta(hours=168, seconds=1), NOW - timedelta(hours=170), True),  # out of the window
        (NOW - timedelta(hours=168), NOW - timedelta(hours=170), False),  # just in it
        (NOW - timedelta(hours=25), NOW, True),  # a day and more behind its member
        (NOW - timedelta(hours=24), NOW, False),
        (NOW, NOW - timedelta(hours=30), False),  # the anchor newer than its member
    ],
)
def test_an_anchor_is_stale_out_of_the_window_or_a_day_behind_its_member(
    anchor_seen: datetime | None, member_seen: datetime, stale: bool
) -> None:
    assert anchor_is_stale(anchor_seen=anchor_seen, member_seen=member_seen, now=NOW, policy=POLICY) is stale


@pytest.mark.parametrize(
    ("common", "equal", "verdict"),
    [
        (49, 49, Verdict.TOO_FEW_PRICES),
        (0, 0, Verdict.TOO_FEW_PRICES),
        (50, 49, Verdict.VERIFIED),  # 98% exactly
        (100, 98, Verdict.VERIFIED),
        (100, 97, Verdict.SPLIT),
        (60, 58, Verdict.SPLIT),
        (1000, 980, Verdict.VERIFIED),
    ],
)
def test_a_member_with_enough_common_prices_is_verified_or_split_by_the_match_rule(
    common: int, equal: int, verdict: Verdict
) -> None:
    assert judge_prices(common=common, equal=equal, policy=POLICY) is verdict


def test_the_verdict_uses_the_float_safe_share_not_a_multiplication() -> None:
    # 55 of 100 is 55% exactly; 0.55 * 100 is 55.00000000000001, which 55 would fail to reach.
    policy = replace(POLICY, min_share=0.55, min_common=10)
    assert 55 < 0.55 * 100
    assert judge_prices(common=100, equal=55, policy=policy) is Verdict.VERIFIED
    assert judge_prices(common=100, equal=54, policy=policy) is Verdict.SPLIT


def test_an_anchor_whose_prices_mostly_changed_has_moved_but_a_weeks_specials_do_not() -> None:
    def moved(compared: int, changed: int) -> bool:
        return anchor_moved(compared=compared, changed=changed, policy=POLICY)

    assert moved(compared=200, changed=190)  # another zone's prices
    assert moved(compared=200, changed=100)
    assert not moved(compared=200, changed=40)  # a week's specials
    assert not moved(compared=40, changed=40), "too few prices compared to tell"
    assert not moved(compared=0, changed=0)


def test_the_regroup_memory_waits_from_a_busy_chains_first_sight() -> None:
    memory = RegroupMemory()
    start = NOW
    # Prices arrive every second: never quiet.
    assert not memory.due("c", latest=start, now=start + timedelta(seconds=1), policy=POLICY)
    assert not memory.due(
        "c", latest=start + timedelta(seconds=59), now=start + timedelta(seconds=59.5), policy=POLICY
    )
    assert memory.due(
        "c", latest=start + timedelta(seconds=60), now=start + timedelta(seconds=61), policy=POLICY
    )
    memory.regrouped("c", at=start + timedelta(seconds=61))
    assert not memory.due(
        "c", latest=start + timedelta(seconds=62), now=start + timedelta(seconds=62.5), policy=POLICY
    )
    assert memory.due(
        "c", latest=start + timedelta(seconds=121), now=start + timedelta(seconds=121.5), policy=POLICY
    )
    # Another chain has its own wait, counted from when the memory first saw it.
    assert not memory.due(
        "d", latest=start + timedelta(seconds=121), now=start + timedelta(seconds=121.5), policy=POLICY
    )
