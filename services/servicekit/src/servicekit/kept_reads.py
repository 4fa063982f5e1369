"""Rows a process read in earlier transactions, kept per store while the store's mark stands.

Members' prices are judged against their anchor's, so a batch of members' prices reads about
one anchor's row per price, though anchors change far less often than their members are seen.
A service that draws a new mark for a store (a sequence value, never reused) in the same
transaction as every write of that store's rows lets each process keep what it read: one
row per store (its mark) is read instead of the rows again. The marks live in the database,
so a row kept by one replica is dropped as soon as any replica changes that store.
"""

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Generic, TypeVar

V = TypeVar("V")
Key = tuple[str, str]
"""(store, sku)."""


class KeptReads(Generic[V]):
    """A process's rows of some stores, read earlier, each store's kept under the mark it was read after."""

    def __init__(self, *, limit: int = 1_000_000) -> None:
        # (scope, store) -> (mark, sku -> row, or None where the store had none)
        self._kept: dict[tuple[str, str], tuple[int, dict[str, V | None]]] = {}
        self._size = 0
        self._limit = limit

    async def read(
        self,
        scope: str,
        keys: Collection[Key],
        *,
        marks: Callable[[Sequence[str]], Awaitable[dict[str, int]]],
        rows: Callable[[Sequence[Key]], Awaitable[dict[Key, V]]],
    ) -> dict[Key, V]:
        """Return the rows of (store, sku) pairs of a scope (a chain), reading only what is not kept.

        `marks` reads the stores' marks (a store without one is never kept); `rows` reads pairs
        (those without a row omitted). The marks are read first: a row read after its mark is
        never older than the mark it is kept under, whatever commits in between.
        """
        if not keys:
            return {}
        current = await marks(sorted({store for store, _ in keys}))
        found: dict[Key, V] = {}
        missing: list[Key] = []
        for key in keys:
            kept = self._kept.get((scope, key[0]))
            if kept is not None and kept[0] == current.get(key[0]) and key[1] in kept[1]:
                if (row := kept[1][key[1]]) is not None:
                    found[key] = row
            else:
                missing.append(key)
        if missing:
            read = await rows(sorted(missing))
            found |= read
            self._keep(scope, current, missing, read)
        return found

    async def stores(
        self,
        scope: str,
        wanted: Mapping[str, Collection[str]],
        *,
        marks: Callable[[Sequence[str]], Awaitable[dict[str, int]]],
        rows: Callable[[Sequence[Key]], Awaitable[dict[Key, V]]],
    ) -> dict[str, Mapping[str, V | None]]:
        """Return, by store, the rows of some of its skus (None where it has none), reading only
        what is not kept; as `read`, a store at a time: a store whose kept rows hold every sku
        asked is answered as kept, with no step per sku in Python."""
        if not wanted:
            return {}
        current = await marks(sorted(wanted))
        found: dict[str, Mapping[str, V | None]] = {}
        missing: list[Key] = []
        for store, skus in wanted.items():
            kept = self._kept.get((scope, store))
            held = kept[1] if kept is not None and kept[0] == current.get(store) else {}
            if all(map(held.__contains__, skus)):
                found[store] = held
            else:
                missing += [(store, sku) for sku in skus if sku not in held]
        if missing:
            read = await rows(sorted(missing))
            self._keep(scope, current, missing, read)
            for store in {store for store, _ in missing}:
                kept = self._kept.get((scope, store))
                # A store without a mark (now) keeps nothing: its rows are answered as read.
                found[store] = (
                    kept[1]
                    if kept is not None and kept[0] == current.get(store)
                    else {sku: read.get((store, sku)) for sku in wanted[store]}
                )
        return found

    def _keep(self, scope: str, marks: dict[str, int], keys: list[Key], read: dict[Key, V]) -> None:
        """Keep what was read under the marks read before it; past the limit, start again."""
        if self._size + len(keys) > self._limit:
            self._kept.clear()
            self._size = 0
        for store, sku in keys:
            mark = marks.get(store)
            if mark is None:
                continue
            kept = self._kept.get((scope, store))
            if kept is None or kept[0] != mark:
                if kept is not None:
                    self._size -= len(kept[1])
                kept = self._kept[scope, store] = (mark, {})
            if sku not in kept[1]:
                self._size += 1
            kept[1][sku] = read.get((store, sku))
