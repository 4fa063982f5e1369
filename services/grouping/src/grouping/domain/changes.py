"""Turn a clustering of anchors and unplaced stores into group changes, keeping the invariant.

The invariant: every member of a group matches the group's anchor. The clustering may
pick a new store as anchor of a cluster that holds existing anchors; an existing group
then survives (the largest), and every store that joins it must match its anchor.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Cluster:
    """Stores the clustering put together, `anchor` first in its eyes."""

    anchor: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Form:
    """A new group of unplaced stores."""

    anchor: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Grow:
    """An existing group gains unplaced stores and absorbs other groups."""

    group_id: str
    joined: tuple[str, ...]
    absorbed: tuple[str, ...] = field(default=())


Change = Form | Grow


def plan_changes(
    clusters: Sequence[Cluster],
    *,
    groups_by_anchor: Mapping[str, str],
    group_sizes: Mapping[str, int],
    anchor_of: Mapping[str, str],
    matches: Callable[[str, str], bool],
) -> list[Change]:
    """Decide which groups form, grow and merge; stores that match no anchor stay unplaced."""
    changes: list[Change] = []
    for cluster in clusters:
        stores = (cluster.anchor, *cluster.members)
        existing = [groups_by_anchor[s] for s in stores if s in groups_by_anchor]
        unplaced = [s for s in stores if s not in groups_by_anchor]
        if not existing:
            changes.append(Form(cluster.anchor, cluster.members))
            continue
        survivor = max(existing, key=lambda g: (group_sizes.get(g, 1), g))
        anchor = anchor_of[survivor]
        absorbed = tuple(g for g in existing if g != survivor and matches(anchor, anchor_of[g]))
        joined = tuple(s for s in unplaced if matches(anchor, s))
        if joined or absorbed:
            changes.append(Grow(survivor, joined, absorbed))
        # Stores that do not match the survivor's anchor start groups of their own.
        leftovers = [s for s in unplaced if s not in joined]
        if cluster.anchor in leftovers:
            rest = [s for s in leftovers if s != cluster.anchor]
            with_anchor = tuple(s for s in rest if matches(cluster.anchor, s))
            changes.append(Form(cluster.anchor, with_anchor))
            leftovers = [s for s in rest if s not in with_anchor]
        changes.extend(Form(s, ()) for s in leftovers)
    return changes
