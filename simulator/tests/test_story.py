"""The demo story's reading of the services' answers against the storefront's truth."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from rich.table import Table

from contracts import Event
from contracts.events import StoreGroupChanged
from contracts.events.v1 import StoreGroupChangedPayload
from simulator import report
from simulator.evaluation import adjusted_rand_index, ari_per_chain, follow_moves, merges_distinct
from simulator.story import bargain_figures, group_changes

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


def test_adjusted_rand_index() -> None:
    assert adjusted_rand_index(["x", "x", "y"], [2, 2, 1]) == 1.0  # names do not matter
    assert adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 1, 2], [3, 4, 5]) == 1.0  # both all singletons
    assert adjusted_rand_index([0, 0, 0], [0, 1, 2]) == 0.0
    with pytest.raises(ValueError, match="one label each"):
        adjusted_rand_index([0], [0, 1])


def test_a_store_in_no_group_counts_as_a_group_of_its_own() -> None:
    zones = {"fm": {"a": "z1", "b": "z1", "c": "z2"}, "gm": {"x": "z1", "y": "z1"}}
    placed = {("fm", "a"): "g1", ("fm", "b"): "g1", ("gm", "x"): "g2", ("gm", "y"): "g2"}
    assert ari_per_chain(zones, placed) == {"fm": 1.0, "gm": 1.0}
    assert ari_per_chain(zones, {("fm", "a"): "g1", ("fm", "c"): "g1"}) == {"fm": -0.5, "gm": 0.0}


def test_bargains_are_scored_per_zone_against_true_and_illusory_specials() -> None:
    zones = {"fm": {"s1": "z1", "s2": "z1", "s3": "z2"}}
    specials = [
        {"chain": "fm", "zone": "z1", "sku": "milk", "kind": "true"},
        {"chain": "fm", "zone": "z2", "sku": "milk", "kind": "true"},
        {"chain": "fm", "zone": "z1", "sku": "eggs", "kind": "illusory"},
        {"chain": "fm", "zone": "z2", "sku": "eggs", "kind": "illusory"},
    ]
    bargains = [
        # Two stores of one zone list one special: it counts once.
        {"chain": "fm", "store_id": "s1", "sku": "milk", "kind": "discount", "score": 0.3},
        {"chain": "fm", "store_id": "s2", "sku": "milk", "kind": "discount", "score": 0.5},
        {"chain": "fm", "store_id": "s3", "sku": "eggs", "kind": "discount", "score": 0.2},
        {"chain": "fm", "store_id": "s3", "sku": "bread", "kind": "cross_chain", "score": 0.9},
        # A members-only price is no shelf special: neither right nor wrong about specials.
        {"chain": "fm", "store_id": "s3", "sku": "tea", "kind": "discount", "score": 0.1},
    ]
    for bargain in bargains:
        prefix = "members" if bargain["sku"] == "tea" else bargain["kind"]
        bargain["bargain_id"] = f"{prefix}:fm:{bargain['store_id']}:{bargain['sku']}"
    flags = [{"chain": "fm", "store_id": "s2", "sku": "eggs"}]
    figures = bargain_figures(specials, bargains, flags, zones)
    assert figures == {
        "bargains": 5,
        "bargains_by_kind": {"discount": 4, "cross_chain": 1},
        "true_specials": 2,
        "discounts_listed": 2,
        "members_only_listed": 1,
        "discount_precision": 0.5,
        "discount_recall": 0.5,
        "illusory_specials": 2,
        "illusory_flagged": 1,
        "illusory_listed": 1,
        "top_bargains": [bargains[3], bargains[1], bargains[0], bargains[2], bargains[4]],
    }
    nothing = bargain_figures([], [], [], zones)
    assert (nothing["discount_precision"], nothing["discount_recall"]) == (None, None)


class _Topic:
    """A stack whose groups.changed topic holds the given events (offset, event)."""

    def __init__(self, events: Sequence[tuple[int, Event]]) -> None:
        self.events = events
        self.storefront_url = "http://shop.test"

    def service_url(self, name: str) -> str:
        return f"http://{name}.test"

    def lag(self) -> Sequence[tuple[str, str, int, int, int]]:
        return []

    def topic_messages(self, names: Sequence[str]) -> dict[str, int]:
        return {}

    def topic_events(self, name: str) -> Sequence[tuple[int, Event]]:
        assert name == "groups.changed.v1"
        return self.events


def _group_changed(group: str, at: datetime) -> StoreGroupChanged:
    payload = StoreGroupChangedPayload(
        chain="fm", group_id=group, group_version=1, anchor_store_id="a", member_store_ids=(), reason="formed"
    )
    return StoreGroupChanged.new(producer="grouping", payload=payload, occurred_at=at)


def test_group_changes_are_ordered_by_grouping_clock_then_offset() -> None:
    late, early = _group_changed("g1", _at(2)), _group_changed("g2", _at(1))
    same_a, same_b = _group_changed("g3", _at(3)), _group_changed("g4", _at(3))
    changes = group_changes(_Topic([(0, late), (1, same_b), (0, early), (0, same_a)]))
    assert [(at, payload["group_id"]) for at, payload in changes] == [
        (_at(1), "g2"),
        (_at(2), "g1"),
        (_at(3), "g3"),
        (_at(3), "g4"),
    ]


def test_adjusted_rand_index_agrees_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 6, 200).tolist(), rng.integers(0, 9, 200).tolist()
    predicted[:120] = truth[:120]
    assert adjusted_rand_index(truth, predicted) == pytest.approx(
        metrics.adjusted_rand_score(truth, predicted)
    )


def test_merges_distinct_tells_a_group_mixing_zones() -> None:
    truth = {"a": "z1", "b": "z1", "c": "z2"}
    assert not merges_distinct(truth, [("a", "b"), ("c",)])
    assert merges_distinct(truth, [("a", "c"), ("b",)])


def _serve(equivalences: list[dict[str, str]], lists: dict[str, list[dict[str, Any]]]) -> httpx.Client:
    """Answer as a storefront of coles and woolworths and a substitutions service holding `lists` by sku."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/_truth/equivalences":
            return httpx.Response(200, json={"equivalences": equivalences})
        if path == "/v1/chains":
            return httpx.Response(200, json={"chains": [{"chain": "coles"}, {"chain": "woolworths"}]})
        if path == "/_truth/prices":
            assert request.url.params["chain"] == "coles"
            return httpx.Response(
                200, json={"prices": [{"sku": sku} for sku in ("1", "2", "2", "3", "4", "5")]}
            )
        sku = path.split("/")[-2]
        if sku not in lists:
            return httpx.Response(404, json={"detail": "not computed"})
        return httpx.Response(200, json={"name": f"product {sku}", "substitutes": lists[sku]})

    return httpx.Client(transport=httpx.MockTransport(answer), base_url="http://local")


def _row(level: str, chain: str, name: str) -> dict[str, Any]:
    return {"level": level, "chain": chain, "sku": name, "name": name, "score": 0.9, "reason": "why"}


def _cells(table: Table) -> list[list[str]]:
    """Return a rich table's rows as their cells."""
    columns = [list(column.cells) for column in table.columns]
    return [[str(column[at]) for column in columns] for at in range(table.row_count)]


def test_without_equivalences_the_examples_are_the_first_with_an_l3_and_with_a_same_item_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lists = {
        "2": [_row("L4", "coles", "a looser one")],
        "3": [_row("L3", "coles", "another brand here")],
        "4": [_row("L1", "woolworths", "the same there"), _row("L3", "coles", "another brand")],
        "5": [_row("L3", "woolworths", "never reached")],
    }
    monkeypatch.setattr(report, "local_http", lambda: _serve([], lists))

    table = report.example_substitutions("http://local", "http://local", timeout_s=5)

    assert "real product names" in str(table.title)
    assert [column.header for column in table.columns][-1] == "reason"
    # sku 1 is not computed and 2 has nothing at L1-L3; 3 has an L3, 4 its same item elsewhere.
    assert _cells(table) == [
        ["product 3", "L3", "another brand here", "coles", "0.90", "why"],
        ["product 4", "L1", "the same there", "woolworths", "0.90", "why"],
        ["", "L3", "another brand", "coles", "0.90", "why"],
    ]


def test_with_equivalences_the_true_pair_is_shown_and_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = [
        {"level": "L1", "chain_a": "coles", "sku_a": "4", "chain_b": "woolworths", "sku_b": "the true one"}
    ]
    lists = {"4": [_row("L1", "woolworths", "a first one"), _row("L1", "woolworths", "the true one")]}
    monkeypatch.setattr(report, "local_http", lambda: _serve(truth, lists))

    table = report.example_substitutions("http://local", "http://local", timeout_s=5)

    assert _cells(table) == [["product 4", "L1", "the true one", "woolworths", "0.90", "why", "L1 pair"]]
