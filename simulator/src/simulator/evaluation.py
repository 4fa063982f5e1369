"""Score what pricestream found against the world's truth: groups against zones, and the zone moves.

Pure functions of what the services answered and what the storefront knows: no IO.
"""

import bisect
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt


def adjusted_rand_index(labels_true: Sequence[Hashable], labels_pred: Sequence[Hashable]) -> float:
    """Return the adjusted Rand index of two labelings of the same items (1.0 when they agree)."""
    if len(labels_true) != len(labels_pred):
        raise ValueError(f"need one label each: {len(labels_true)} true, {len(labels_pred)} predicted")
    truth, predicted = _codes(labels_true), _codes(labels_pred)
    # Each distinct (true, predicted) pair is a cell of the contingency table.
    _, cells = np.unique(truth * (int(predicted.max(initial=0)) + 1) + predicted, return_counts=True)
    together = _pairs(cells).sum()
    true_pairs = _pairs(np.bincount(truth)).sum()
    predicted_pairs = _pairs(np.bincount(predicted)).sum()
    all_pairs = len(labels_true) * (len(labels_true) - 1) / 2
    expected = true_pairs * predicted_pairs / all_pairs if all_pairs else 0.0
    best = (true_pairs + predicted_pairs) / 2
    # Both labelings all singletons or both one cluster: they agree, and the index is 0 / 0.
    if best == expected:
        return 1.0
    return float((together - expected) / (best - expected))


def merges_distinct(truth: Mapping[str, str], groups: Iterable[Iterable[str]]) -> bool:
    """Tell whether any group (its store ids) holds stores of two true zones (`truth`: store to zone)."""
    return any(len({truth[store] for store in stores}) > 1 for stores in groups)


def _codes(labels: Sequence[Hashable]) -> npt.NDArray[np.int64]:
    """Number the distinct labels 0, 1, ... in order of first appearance."""
    numbers: dict[Hashable, int] = {}
    return np.array([numbers.setdefault(label, len(numbers)) for label in labels], dtype=np.int64)


def _pairs(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Return how many pairs each count of items makes: n * (n - 1) / 2."""
    return counts * (counts - 1) / 2


def ari_per_chain(
    truth_zones: Mapping[str, Mapping[str, str]], placed: Mapping[tuple[str, str], str]
) -> dict[str, float]:
    """Return each chain's adjusted Rand index of the groups found against the given zones.

    `placed` maps (chain, store) to its group; a store in no group counts as a group of its own.
    """
    ari = {}
    for chain, zones in truth_zones.items():
        stores = sorted(zones)
        predicted = [placed.get((chain, store), f"alone:{store}") for store in stores]
        ari[chain] = round(adjusted_rand_index([zones[s] for s in stores], predicted), 3)
    return ari


def follow_moves(
    moves: list[dict[str, Any]],
    changes: list[tuple[datetime, dict[str, Any]]],
    runs: list[dict[str, Any]],
    pages: dict[str, int],
    groups: list[dict[str, Any]],
    truth_zones: dict[str, dict[str, str]],
    *,
    days: int,
) -> list[dict[str, Any]]:
    """Follow each re-zoned store through grouping: when it was noticed, when it joined its new zone.

    Noticed is the first change of the store's group after the move: it left, its group dissolved,
    or, for an anchor, its group's stores changed. With its new zone: in a group most of whose
    other stores are in that zone on the last day. Grouping's events carry the wall-clock time they
    were made and a simulated day lasts from its run's start to the next one's, so an event counts
    on the day the shop's clock showed.
    """
    starts = [datetime.fromisoformat(run["started_at"]) for run in runs]
    days_at = [max(0, bisect.bisect_right(starts, at) - 1) for at, _ in changes]
    scraped = _scraped_days(pages)
    end_groups = {(g["chain"], s): g for g in groups for s in [g["anchor_store_id"], *g["members"]]}
    rows = []
    for move in moves:
        chain, store, moved = move["chain"], move["store_id"], move["day"]
        if moved >= days:
            continue
        timeline = [(day, at >= starts[moved], c) for day, (at, c) in zip(days_at, changes, strict=True)]
        noticed, joined = _reactions(chain, store, move["to_zone"], timeline, truth_zones[chain])
        end = end_groups.get((chain, store))
        end_zone = None if end is None else _zone_of_group(truth_zones[chain], _stores(end), store)
        scraped_after = [day for day in scraped[(chain, store)] if day >= moved]
        rows.append(
            {
                "chain": chain,
                "store_id": store,
                "from_zone": move["from_zone"],
                "to_zone": move["to_zone"],
                "day_moved": moved,
                "first_scraped_after_move": min(scraped_after, default=None),
                "noticed_day": None if noticed is None else noticed[0],
                "noticed_as": None if noticed is None else noticed[1],
                "with_new_zone_since": joined,
                "end_group": None if end is None else end["group_id"],
                "end_anchor": None if end is None else end["anchor_store_id"],
                "end_group_size": 0 if end is None else 1 + len(end["members"]),
                "end_group_zone": end_zone,
                "with_new_zone": end_zone == move["to_zone"],
            }
        )
    return rows


def _scraped_days(pages: dict[str, int]) -> dict[tuple[str, str], set[int]]:
    """Return the days each store was scraped, from the shop's count of pages served.

    The shop counts pages by chain/store/category/page/day.
    """
    scraped: dict[tuple[str, str], set[int]] = defaultdict(set)
    for key in pages:
        chain, store, *_, day = key.split("/")
        scraped[(chain, store)].add(int(day))
    return scraped


def _stores(group: dict[str, Any]) -> set[str]:
    """Return a listed group's stores: its anchor and its members."""
    return {group["anchor_store_id"], *group["members"]}


def _zone_of_group(zones: Mapping[str, str], stores: set[str], store: str) -> str | None:
    """Return the true zone most of a group's other stores are in (None for a store alone)."""
    others = Counter(zones[s] for s in stores if s != store)
    return others.most_common(1)[0][0] if others else None


def _reactions(
    chain: str,
    store: str,
    to_zone: str,
    changes: list[tuple[int, bool, dict[str, Any]]],
    zones: Mapping[str, str],
) -> tuple[tuple[int, str] | None, int | None]:
    """Replay group changes (day, after the move, payload) for one moved store of a chain.

    Return (day and reason of the first change of its group after the move, or None) and the day
    since which it is in a group of its new zone (None if it is not at the end). `zones` are the
    chain's true zones on the last day.
    """
    group_of_store: str | None = None
    before: tuple[str | None, frozenset[str]] = (None, frozenset())
    members: dict[str, set[str]] = {}
    anchors: dict[str, str] = {}
    noticed: tuple[int, str] | None = None
    joined: int | None = None
    for day, after_move, change in changes:
        if change["chain"] != chain:
            continue
        group = change["group_id"]
        dissolved = change["reason"] == "dissolved"
        members[group] = set() if dissolved else {change["anchor_store_id"], *change["member_store_ids"]}
        anchors[group] = change["anchor_store_id"]
        if store in members[group]:
            group_of_store = group
        elif group_of_store == group:
            group_of_store = None
        # An anchor stays in its group while grouping splits its old zone's members off (or merges
        # its new zone's in): for an anchor, a change of its group's stores counts too.
        leads = group_of_store is not None and anchors[group_of_store] == store
        mates = frozenset(members[group_of_store]) if leads and group_of_store else frozenset()
        if not after_move:
            before = (group_of_store, mates)
            continue
        if noticed is None and group_of_store != before[0]:
            noticed = (day, change["reason"])
        elif noticed is None and leads and mates != before[1]:
            noticed = (day, f"its group {change['reason']}")
        in_new_zone = group_of_store is not None and (
            _zone_of_group(zones, members[group_of_store], store) == to_zone
        )
        if not in_new_zone:
            joined = None
        elif joined is None:
            joined = day
    return noticed, joined
