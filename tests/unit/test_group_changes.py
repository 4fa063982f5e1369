"""Group changes from a clustering: every member matches its group's anchor, always."""

from collections.abc import Callable

import pytest

from grouping.domain.changes import Cluster, Form, Grow, plan_changes

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
