"""An in-memory history table for the archiver: servicekit's TableArchive over a list of rows."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

from pricestream.archive import HistoryTable, OpenTable
from servicekit.archive import ArchivedTable, Row


class InMemoryHistoryTable:
    """A table's rows in a list; deletes and restores are all or nothing, like a transaction."""

    def __init__(self, table: ArchivedTable, rows: Sequence[Row] = ()) -> None:
        self.table = table
        self.rows_held: list[Row] = list(rows)
        self.fail_deletes = False
        self.archived_months: set[tuple[str, date]] = set()

    def _at(self, name: str, row: Row) -> object:
        return row[self.table.column_names.index(name)]

    def _time(self, row: Row) -> datetime:
        value = self._at(self.table.time_column, row)
        assert isinstance(value, datetime)
        return value

    def _key(self, row: Row) -> tuple[object, ...]:
        return tuple(self._at(name, row) for name in self.table.key)

    async def months(self, *, before: datetime, chains: Sequence[str]) -> list[tuple[str, date]]:
        """Return each (chain, UTC month) holding rows older than `before`."""
        found = set()
        for row in self.rows_held:
            chain, at = self._at(self.table.chain_column, row), self._time(row).astimezone(UTC)
            if at < before and (not chains or chain in chains):
                found.add((str(chain), date(at.year, at.month, 1)))
        return sorted(found)

    async def rows(self, *, chain: str, start: datetime, end: datetime) -> list[Row]:
        """Return a chain's rows whose time lies in [start, end), in key order."""
        return sorted(
            (
                r
                for r in self.rows_held
                if self._at(self.table.chain_column, r) == chain and start <= self._time(r) < end
            ),
            key=lambda r: repr(self._key(r)),
        )

    async def delete(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Delete exactly these rows; fail before changing anything when told to (a crash)."""
        if self.fail_deletes:
            raise ConnectionResetError("the database went away before the delete committed")
        wanted = set(rows)
        before = len(self.rows_held)
        self.rows_held = [r for r in self.rows_held if r not in wanted]
        deleted = before - len(self.rows_held)
        if deleted:
            self.archived_months.add((chain, month))
        return deleted

    async def restore(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Insert the rows whose key is free; return how many went in."""
        keys = {self._key(r) for r in self.rows_held}
        added = 0
        for row in rows:
            if self._key(row) not in keys:
                self.rows_held.append(row)
                keys.add(self._key(row))
                added += 1
        self.archived_months.discard((chain, month))
        return added


def opener(tables: dict[str, InMemoryHistoryTable]) -> OpenTable:
    """Return how the archiver reaches these in-memory tables (by `service.table`)."""

    @asynccontextmanager
    async def open_table(table: ArchivedTable) -> AsyncIterator[HistoryTable]:
        yield tables[f"{table.service}.{table.name}"]

    return open_table


def synthetic_history(
    table: ArchivedTable, *, chain: str, start: datetime, days: int, stores: int = 3, skus: int = 4
) -> list[Row]:
    """Return a table's rows for `days` simulated days: a sighting a day, or runs of a week's price."""
    runs = "starts_at" in table.column_names
    rows = []
    for store in range(stores):
        for sku in range(skus):
            step = 7 if runs else 1
            for day in range(0, days, step):
                first = start + timedelta(days=day, hours=8, minutes=store)
                last = start + timedelta(days=min(day + step, days) - 1, hours=8, minutes=store)
                price = 100 + sku * 50 + (day // 7) % 5 * 10
                values: dict[str, object] = {
                    "chain": chain,
                    "store_id": f"s{store}",
                    "sku": f"sku-{sku}",
                    "observed_at": first,
                    "starts_at": first,
                    "ends_at": last,
                    "price_cents": price,
                    "was_price_cents": price + 40 if day % 28 == 0 else None,
                    "member_price_cents": None,
                    "multibuy_quantity": 2 if sku == 1 else None,
                    "multibuy_total_cents": 2 * price - 20 if sku == 1 else None,
                    "sold_by": "kg" if sku == 3 else "each",
                }
                rows.append(tuple(values[name] for name in table.column_names))
    return rows
