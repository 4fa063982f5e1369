"""History tables that the operator's archive moves out of a service's schema, and the SQL that does it.

A service declares its tables of history (`ArchivedTable`); the archive reads a chain's rows of
one month, and once they are safely in a file deletes exactly those rows, or puts them back. It
runs as the service's own role, so no one but the service touches its schema.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from servicekit.db import Connection, rows_affected

Row = tuple[object, ...]
"""One row of an archived table, its columns in the table's declared order."""

# Rows per statement when deleting or restoring: bounded parameter arrays, one transaction.
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class ArchivedTable:
    """A table of history: rows whose time lies before the retention window may be archived."""

    service: str
    name: str
    columns: tuple[tuple[str, str], ...]
    """Each column with its PostgreSQL type, in the order the archive files keep."""
    key: tuple[str, ...]
    time_column: str
    keeps_at_least: timedelta = timedelta(0)
    """How far back the service itself reads this table: a shorter retention window is refused."""
    chain_column: str = "chain"
    months_table: str | None = None
    """The service's table of (chain, month, archived_at) that its history API reads, if any."""
    stays: str = "false"
    """A condition (SQL over the table's columns) on rows that stay whatever their time says."""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Return the columns' names in order."""
        return tuple(name for name, _ in self.columns)

    def unnest_sql(self, first_param: int = 1) -> str:
        """Return `unnest($1::t1[], ...) AS k(c1, ...)` over every column."""
        params = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(self.columns, start=first_param))
        return f"unnest({params}) AS k({', '.join(self.column_names)})"


class TableArchive:
    """Read, delete and put back one history table's rows by chain and month, over one connection."""

    def __init__(self, conn: Connection, table: ArchivedTable) -> None:
        self.conn = conn
        self.table = table

    async def months(self, *, before: datetime, chains: Sequence[str]) -> list[tuple[str, date]]:
        """Return each (chain, UTC month) holding rows older than `before` (every chain when none named)."""
        t = self.table
        rows = await self.conn.fetch(
            f"""SELECT DISTINCT {t.chain_column} AS chain,
                       date_trunc('month', {t.time_column} AT TIME ZONE 'UTC')::date AS month
                FROM {t.name}
                WHERE {t.time_column} < $1 AND (cardinality($2::text[]) = 0 OR {t.chain_column} = ANY($2))
                  AND NOT ({t.stays})
                ORDER BY 1, 2""",
            before,
            list(chains),
        )
        return [(r["chain"], r["month"]) for r in rows]

    async def rows(self, *, chain: str, start: datetime, end: datetime) -> list[Row]:
        """Return a chain's rows whose time lies in [start, end), in key order."""
        t = self.table
        records = await self.conn.fetch(
            f"""SELECT {", ".join(t.column_names)} FROM {t.name}
                WHERE {t.chain_column} = $1 AND {t.time_column} >= $2 AND {t.time_column} < $3
                  AND NOT ({t.stays})
                ORDER BY {", ".join(t.key)}""",
            chain,
            start,
            end,
        )
        return [tuple(r.values()) for r in records]

    async def delete(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Delete exactly these rows (a row changed since it was read stays), in one transaction."""
        t = self.table
        # Key columns by equality (the primary key finds them), the rest compared NULL-safe.
        match = " AND ".join(
            f"h.{c} = k.{c}" if c in t.key else f"h.{c} IS NOT DISTINCT FROM k.{c}" for c in t.column_names
        )
        deleted = 0
        async with self.conn.transaction():
            for chunk in _chunks(rows):
                status = await self.conn.execute(
                    f"DELETE FROM {t.name} h USING {t.unnest_sql()} WHERE {match}", *_columns(chunk, t)
                )
                deleted += rows_affected(status)
            await self.archived(chain=chain, month=month, deleted=deleted)
        return deleted

    async def restore(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Insert these rows where their key is free, in one transaction; return how many went in."""
        t = self.table
        restored = 0
        async with self.conn.transaction():
            for chunk in _chunks(rows):
                status = await self.conn.execute(
                    f"""INSERT INTO {t.name} ({", ".join(t.column_names)})
                        SELECT * FROM {t.unnest_sql()} ON CONFLICT DO NOTHING""",
                    *_columns(chunk, t),
                )
                restored += rows_affected(status)
            await self.restored(chain=chain, month=month)
        return restored

    async def archived(self, *, chain: str, month: date, deleted: int) -> None:
        """Record, in the delete's transaction, that a month of a chain now lies in the archive."""
        if deleted and self.table.months_table:
            await self.conn.execute(
                f"""INSERT INTO {self.table.months_table} (chain, month, archived_at) VALUES ($1, $2, now())
                    ON CONFLICT (chain, month) DO UPDATE SET archived_at = EXCLUDED.archived_at""",
                chain,
                month,
            )

    async def restored(self, *, chain: str, month: date) -> None:
        """Record, in the restore's transaction, that a month of a chain is back in the table."""
        if self.table.months_table:
            await self.conn.execute(
                f"DELETE FROM {self.table.months_table} WHERE chain = $1 AND month = $2", chain, month
            )


def _chunks(rows: Sequence[Row]) -> list[Sequence[Row]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _columns(rows: Sequence[Row], table: ArchivedTable) -> list[list[object]]:
    """Return the rows as one list per column, the parameters of `unnest`."""
    return [[row[i] for row in rows] for i in range(len(table.columns))]
