"""Group changes from a clustering: every member matches its group's anchor, always."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from grouping.domain.changes import Cluster, Form, Grow, plan_changes
from grouping.domain.regroup import due_for_regroup

pytestmark = pytest.mark.unit


def _matches(pairs: set[frozenset[str]]) -> Callable[[str, str], bool]:
    return lambda a, b: a == b or frozenset((a, b)) in pairs


def test_unplaced_cluster_forms_a_group() -> None:
    changes = plan_changes(
        [Cluster("s1", ("s2", "s3"))],
        groups_by_anchor={},
        group_sizes={},
        anchor_of={},
        matches=_matches(set()),
    )
    assert changes == [Form("s1", ("s2", "s3"))]


def test_stores_join_an_existing_group_only_if_they_match_its_anchor() -> None:
    # The clustering picked new store n1 as anchor of a cluster holding existing anchor a1.
    changes = plan_changes(
        [Cluster("n1", ("a1", "n2", "n3"))],
        groups_by_anchor={"a1": "g1"},
        group_sizes={"g1": 5},
        anchor_of={"g1": "a1"},
        matches=_matches({frozenset(("a1", "n1")), frozenset(("a1", "n2"))}),
    )
    assert changes == [Grow("g1", joined=("n1", "n2")), Form("n3", ())]


def test_matching_groups_merge_into_the_larger() -> None:
    changes = plan_changes(
        [Cluster("a1", ("a2", "a3"))],
        groups_by_anchor={"a1": "g1", "a2": "g2", "a3": "g3"},
        group_sizes={"g1": 2, "g2": 9, "g3": 1},
        anchor_of={"g1": "a1", "g2": "a2", "g3": "a3"},
        matches=_matches({frozenset(("a2", "a1"))}),
    )
    assert changes == [Grow("g2", joined=(), absorbed=("g1",))], "a3 does not match the survivor's anchor"


def test_leftovers_group_around_the_clusters_anchor_when_they_match_it() -> None:
    changes = plan_changes(
        [Cluster("n1", ("a1", "n2", "n3"))],
        groups_by_anchor={"a1": "g1"},
        group_sizes={"g1": 3},
        anchor_of={"g1": "a1"},
        matches=_matches({frozenset(("n1", "n2")), frozenset(("n1", "n3"))}),
    )
    assert changes == [Form("n1", ("n2", "n3"))]


def test_an_existing_group_alone_changes_nothing() -> None:
    changes = plan_changes(
        [Cluster("a1", ())],
        groups_by_anchor={"a1": "g1"},
        group_sizes={"g1": 3},
        anchor_of={"g1": "a1"},
        matches=_matches(set()),
    )
    assert changes == []


def test_a_chain_is_regrouped_when_quiet_or_when_busy_for_too_long() -> None:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    quiet, longest = timedelta(seconds=2), timedelta(seconds=60)

    def due(latest: datetime, regrouped_at: datetime | None, now: datetime) -> bool:
        return due_for_regroup(
            latest=latest,
            regrouped_at=regrouped_at,
            waiting_since=start,
            now=now,
            quiet=quiet,
            longest_wait=longest,
        )

    assert due(start, None, start + timedelta(seconds=3)), "quiet for 3 s: regroup"
    assert not due(start, None, start + timedelta(seconds=1)), "prices a second ago: wait"
    # Prices arrive every second without a pause: after a minute it regroups anyway.
    assert not due(start + timedelta(seconds=59), None, start + timedelta(seconds=59.5))
    assert due(start + timedelta(seconds=60), None, start + timedelta(seconds=60.5))
    regrouped = start + timedelta(seconds=61)
    assert not due(start + timedelta(seconds=90), regrouped, start + timedelta(seconds=90.5))
    assert due(start + timedelta(seconds=121), regrouped, start + timedelta(seconds=121.5))
    # Nothing new since the last regroup: nothing to do, however long ago it was.
    assert not due(start, regrouped, start + timedelta(hours=1))
