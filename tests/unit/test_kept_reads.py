"""Rows kept between transactions while their store's mark stands, and read again once it moves."""

from collections.abc import Sequence

import pytest

from servicekit.kept_reads import KeptReads, Key

pytestmark = pytest.mark.unit


class _Table:
    """Rows by (store, sku) and a mark per store, counting what is read."""

    def __init__(self) -> None:
        self.rows: dict[Key, int] = {("a", "milk"): 400, ("b", "milk"): 300}
        self.marks: dict[str, int] = {"a": 1, "b": 1}
        self.read_pairs: list[Key] = []

    async def read_marks(self, stores: Sequence[str]) -> dict[str, int]:
        return {store: self.marks[store] for store in stores if store in self.marks}

    async def read_rows(self, keys: Sequence[Key]) -> dict[Key, int]:
        self.read_pairs += keys
        return {key: self.rows[key] for key in keys if key in self.rows}

    def write(self, key: Key, value: int) -> None:
        self.rows[key] = value
        self.marks[key[0]] = max(self.marks.values()) + 1


async def _read(kept: KeptReads[int], table: _Table, *keys: Key) -> dict[Key, int]:
    return await kept.read("c", keys, marks=table.read_marks, rows=table.read_rows)


async def test_a_row_is_read_once_while_its_stores_mark_stands() -> None:
    table, kept = _Table(), KeptReads[int]()
    assert await _read(kept, table, ("a", "milk"), ("a", "tea")) == {("a", "milk"): 400}
    assert await _read(kept, table, ("a", "milk"), ("a", "tea")) == {("a", "milk"): 400}
    assert table.read_pairs == [("a", "milk"), ("a", "tea")], "a pair without a row is kept as none"


async def test_a_store_written_since_is_read_again_and_the_others_are_not() -> None:
    table, kept = _Table(), KeptReads[int]()
    await _read(kept, table, ("a", "milk"), ("b", "milk"))
    table.write(("a", "milk"), 450)
    assert await _read(kept, table, ("a", "milk"), ("b", "milk")) == {("a", "milk"): 450, ("b", "milk"): 300}
    assert table.read_pairs == [("a", "milk"), ("b", "milk"), ("a", "milk")]


async def test_a_store_without_a_mark_is_always_read() -> None:
    table, kept = _Table(), KeptReads[int]()
    table.rows["x", "milk"] = 100
    for _ in range(2):
        assert await _read(kept, table, ("x", "milk")) == {("x", "milk"): 100}
    assert table.read_pairs == [("x", "milk")] * 2


async def test_past_its_limit_it_starts_again_and_answers_the_same() -> None:
    table, kept = _Table(), KeptReads[int](limit=2)
    both = {("a", "milk"): 400, ("b", "milk"): 300}
    assert await _read(kept, table, ("a", "milk"), ("b", "milk")) == both
    assert await _read(kept, table, ("a", "tea")) == {}  # a third pair: what was kept goes
    assert await _read(kept, table, ("a", "milk"), ("b", "milk")) == both
    assert table.read_pairs == [("a", "milk"), ("b", "milk"), ("a", "tea"), ("a", "milk"), ("b", "milk")]


async def test_no_pairs_asked_reads_nothing() -> None:
    table, kept = _Table(), KeptReads[int]()

    async def no_marks(stores: Sequence[str]) -> dict[str, int]:
        raise AssertionError("no marks to read for no pairs")

    assert await kept.read("c", (), marks=no_marks, rows=table.read_rows) == {}
    assert table.read_pairs == []


async def _stores(
    kept: KeptReads[int], table: _Table, **wanted: list[str]
) -> dict[str, dict[str, int | None]]:
    found = await kept.stores("c", wanted, marks=table.read_marks, rows=table.read_rows)
    return {store: {sku: rows.get(sku) for sku in wanted[store]} for store, rows in found.items()}


async def test_a_store_at_a_time_reads_only_the_skus_not_kept_under_its_mark() -> None:
    table, kept = _Table(), KeptReads[int]()
    table.rows["x", "milk"] = 100
    assert await _stores(kept, table, a=["milk"], x=["milk"]) == {"a": {"milk": 400}, "x": {"milk": 100}}
    assert await _stores(kept, table, a=["milk", "tea"]) == {"a": {"milk": 400, "tea": None}}
    assert table.read_pairs == [("a", "milk"), ("x", "milk"), ("a", "tea")], "only the sku not kept"
    assert await _stores(kept, table, a=["tea", "milk"]) == {"a": {"milk": 400, "tea": None}}
    table.write(("a", "milk"), 450)
    assert await _stores(kept, table, a=["milk"], x=["milk"]) == {"a": {"milk": 450}, "x": {"milk": 100}}
    assert table.read_pairs[3:] == [("a", "milk"), ("x", "milk")], "a moved mark, and a store without one"


async def test_a_store_whose_mark_is_gone_is_answered_as_read_not_as_kept() -> None:
    table, kept = _Table(), KeptReads[int]()
    assert await _stores(kept, table, a=["milk"]) == {"a": {"milk": 400}}
    # Unplaced and written since: no mark any more, and what was kept under the old one is stale.
    del table.marks["a"]
    table.rows["a", "milk"] = 450
    assert await _stores(kept, table, a=["milk", "tea"]) == {"a": {"milk": 450, "tea": None}}
