"""The demo story's reading of grouping's events against the storefront's zone moves."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pricestream.story import follow_moves

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _at(day: int, seconds: float = 1.0) -> datetime:
    """Return a moment `seconds` into the run of a simulated day (runs a minute apart)."""
    return START + timedelta(minutes=day, seconds=seconds)


def _change(group: str, anchor: str, members: tuple[str, ...], reason: str = "split") -> dict[str, Any]:
    return {
        "chain": "fm",
        "group_id": group,
        "anchor_store_id": anchor,
        "member_store_ids": members,
        "reason": reason,
    }


RUNS = [{"started_at": _at(day, 0).isoformat()} for day in range(6)]
ZONES = {"fm": {"a1": "z1", "m1": "z1", "m2": "z2", "a2": "z2", "m3": "z2"}}
MOVE = {"chain": "fm", "store_id": "m2", "from_zone": "z1", "to_zone": "z2", "day": 2}


def test_a_moved_member_is_noticed_when_it_leaves_and_placed_when_it_joins_its_new_zone() -> None:
    changes = [
        (_at(0), _change("g1", "a1", ("m1", "m2"), "formed")),
        (_at(0, 2), _change("g2", "a2", ("m3",), "formed")),
        (_at(3, 30), _change("g1", "a1", ("m1",))),
        (_at(4, 5), _change("g2", "a2", ("m2", "m3"), "member_joined")),
    ]
    groups = [
        {"chain": "fm", "group_id": "g1", "anchor_store_id": "a1", "members": ["m1"]},
        {"chain": "fm", "group_id": "g2", "anchor_store_id": "a2", "members": ["m2", "m3"]},
    ]
    pages = {"fm/m2/dairy/1/0": 1, "fm/m2/dairy/1/3": 1, "fm/a1/dairy/1/2": 1}
    [row] = follow_moves([MOVE], changes, RUNS, pages, groups, ZONES, days=6)
    assert row == {
        "chain": "fm",
        "store_id": "m2",
        "from_zone": "z1",
        "to_zone": "z2",
        "day_moved": 2,
        "first_scraped_after_move": 3,
        "noticed_day": 3,
        "noticed_as": "split",
        "with_new_zone_since": 4,
        "end_group": "g2",
        "end_anchor": "a2",
        "end_group_size": 3,
        "end_group_zone": "z2",
        "with_new_zone": True,
    }


def test_a_moved_store_never_noticed_stays_with_its_old_zone() -> None:
    changes = [(_at(0), _change("g1", "a1", ("m1", "m2"), "formed"))]
    groups = [{"chain": "fm", "group_id": "g1", "anchor_store_id": "a1", "members": ["m1", "m2"]}]
    [row] = follow_moves([MOVE], changes, RUNS, {}, groups, ZONES, days=6)
    assert (row["noticed_day"], row["with_new_zone_since"], row["first_scraped_after_move"]) == (None,) * 3
    assert (row["end_group_zone"], row["with_new_zone"]) == ("z1", False)
    # A move after the last day is left out.
    assert follow_moves([{**MOVE, "day": 6}], changes, RUNS, {}, groups, ZONES, days=6) == []


def test_a_moved_anchor_is_noticed_when_its_group_dissolves_into_its_new_zones() -> None:
    move = {**MOVE, "store_id": "a1", "from_zone": "z1"}
    zones = {"fm": {**ZONES["fm"], "a1": "z2"}}
    changes = [
        (_at(0), _change("g1", "a1", ("m1",), "formed")),
        (_at(0, 2), _change("g2", "a2", ("m3",), "formed")),
        (_at(2, 40), {**_change("g1", "a1", (), "dissolved"), "merged_into": "g2"}),
        (_at(2, 41), _change("g2", "a2", ("a1", "m1", "m3"), "merged")),
        (_at(3, 20), _change("g2", "a2", ("a1", "m3"))),
    ]
    groups = [
        {"chain": "fm", "group_id": "g2", "anchor_store_id": "a2", "members": ["a1", "m3"]},
        {"chain": "fm", "group_id": "g3", "anchor_store_id": "m1", "members": []},
    ]
    [row] = follow_moves([move], changes, RUNS, {}, groups, zones, days=6)
    assert (row["noticed_day"], row["noticed_as"], row["with_new_zone_since"]) == (2, "dissolved", 2)
    assert (row["end_anchor"], row["end_group_zone"], row["with_new_zone"]) == ("a2", "z2", True)


def test_a_moved_anchor_whose_group_stays_is_noticed_when_its_old_zones_members_leave() -> None:
    # Anchor a1 moves from z1 to z2 and keeps its group: its z1 member is split off, z2 joins it.
    move = {**MOVE, "store_id": "a1", "from_zone": "z1"}
    zones = {"fm": {"a1": "z2", "m1": "z1", "m3": "z2"}}
    changes = [
        (_at(0), _change("g1", "a1", ("m1",), "formed")),
        (_at(0, 2), _change("g2", "m3", (), "formed")),
        (_at(1, 5), _change("g2", "m3", (), "formed")),
        (_at(3, 20), _change("g1", "a1", ())),
        (_at(3, 21), _change("g3", "m1", (), "formed")),
        (_at(4, 5), _change("g1", "a1", ("m3",), "merged")),
    ]
    groups = [{"chain": "fm", "group_id": "g1", "anchor_store_id": "a1", "members": ["m3"]}]
    [row] = follow_moves([move], changes, RUNS, {}, groups, zones, days=6)
    assert (row["noticed_day"], row["noticed_as"], row["with_new_zone_since"]) == (3, "its group split", 4)
    assert row["with_new_zone"]
