"""Score groups against known pricing zones: adjusted Rand index, and whether a group mixes zones."""

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from grouping.domain.grouping import Group


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


def merges_distinct(truth: Mapping[str, str], groups: Iterable[Group]) -> bool:
    """Tell whether any group holds stores of two different true zones (`truth`: store id to zone)."""
    return any(len({truth[store] for store in group.stores}) > 1 for group in groups)


def _codes(labels: Sequence[Hashable]) -> npt.NDArray[np.int64]:
    """Number the distinct labels 0, 1, ... in order of first appearance."""
    numbers: dict[Hashable, int] = {}
    return np.array([numbers.setdefault(label, len(numbers)) for label in labels], dtype=np.int64)


def _pairs(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Return how many pairs each count of items makes: n * (n - 1) / 2."""
    return counts * (counts - 1) / 2
