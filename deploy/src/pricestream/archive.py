"""`pricestream archive`: history older than the retention window into Parquet files, and back.

Per table, chain and month: read the rows, write those not yet archived to a Parquet file
(zstd), read the file back and check its checksum, row count and rows, list it in the
manifest, and only then delete exactly the rows read, in one transaction. A crash at any step
leaves every row either in the table or in a listed file (or both), and a re-run finishes the
job without writing anything twice.
"""

import hashlib
import io
import posixpath
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import asyncpg
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import bargains.archive
import catalogue.archive
import scraper.archive
from pricestream.processes import UnreachableError
from pricestream.retention import (
    Manifest,
    ManifestEntry,
    archive_cutoff,
    month_label,
    month_span,
    part_path,
)
from servicekit.archive import ArchivedTable, Row, TableArchive

TABLES: tuple[ArchivedTable, ...] = (
    *scraper.archive.TABLES,
    *bargains.archive.TABLES,
    *catalogue.archive.TABLES,
)
"""Every table of price history the services keep."""
ARROW_TYPES = {
    "text": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "double precision": pa.float64(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
MANIFEST = "manifest.json"


class ArchiveError(Exception):
    """The archive cannot go on safely (a file fails its check, a window is too short): nothing is deleted."""


class ArchiveSettings(BaseSettings):
    """Where the archive lies and how much history stays hot, from `PRICESTREAM_ARCHIVE_*` or flags."""

    model_config = SettingsConfigDict(env_prefix="PRICESTREAM_ARCHIVE_", extra="ignore")

    url: str | None = Field(default=None, description="A folder or fsspec URL (default: <home>/archive)")
    retention_days: int = Field(default=90, ge=1, description="Days of history kept in the tables")
    # The services' own database roles: taken from the local stack unless given (another deployment).
    database_urls: dict[str, str] = Field(default_factory=dict)

    def archive_url(self, home: Path) -> str:
        """Return the archive's URL, the local stack's folder when none is set."""
        return self.url or str(home / "archive")


class HistoryTable(Protocol):
    """What the archive asks of a service's history table (servicekit's TableArchive)."""

    async def months(self, *, before: datetime, chains: Sequence[str]) -> list[tuple[str, date]]:
        """Return each (chain, month) holding rows older than `before`."""
        ...

    async def rows(self, *, chain: str, start: datetime, end: datetime) -> list[Row]:
        """Return a chain's rows whose time lies in [start, end), in key order."""
        ...

    async def delete(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Delete exactly these rows in one transaction; return how many."""
        ...

    async def restore(self, *, chain: str, month: date, rows: Sequence[Row]) -> int:
        """Insert these rows where their key is free; return how many went in."""
        ...


OpenTable = Callable[[ArchivedTable], AbstractAsyncContextManager[HistoryTable]]


def arrow_schema(table: ArchivedTable) -> pa.Schema:
    """Return the Parquet schema of a table's archive files."""
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in table.columns])


def arrow_table(table: ArchivedTable, rows: Sequence[Row]) -> pa.Table:
    """Return rows as an Arrow table of the archive's schema."""
    columns = {name: [row[i] for row in rows] for i, name in enumerate(table.column_names)}
    return pa.Table.from_pydict(columns, schema=arrow_schema(table))


def encode(table: ArchivedTable, rows: Sequence[Row]) -> bytes:
    """Return rows as a zstd-compressed Parquet file (the same rows give the same bytes)."""
    buffer = io.BytesIO()
    pq.write_table(arrow_table(table, rows), buffer, compression="zstd")
    return buffer.getvalue()


def read_arrow(table: ArchivedTable, data: bytes) -> pa.Table:
    """Return a Parquet file of this table as an Arrow table, columns in the table's order."""
    return pq.read_table(io.BytesIO(data)).select(list(table.column_names))


def decode(table: ArchivedTable, data: bytes) -> list[Row]:
    """Return the rows of a Parquet file of this table, columns in the table's order."""
    read = read_arrow(table, data)
    return list(zip(*(read.column(name).to_pylist() for name in table.column_names), strict=True))


class ArchiveStore:
    """The archive's folder (any fsspec URL): Parquet files per table, chain and month, and the manifest."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)

    def _at(self, path: str) -> str:
        return posixpath.join(self.root, path)

    def manifest(self) -> Manifest:
        """Return the manifest (empty for a new archive)."""
        if not self.fs.exists(self._at(MANIFEST)):
            return Manifest()
        return Manifest.model_validate_json(self.fs.cat_file(self._at(MANIFEST)))

    def save(self, manifest: Manifest) -> None:
        """Write the manifest aside, then move it into place: a reader never sees half of one."""
        self.fs.makedirs(self.root, exist_ok=True)
        aside = self._at(f"{MANIFEST}.new")
        self.fs.pipe_file(aside, manifest.model_dump_json(indent=2).encode())
        self.fs.mv(aside, self._at(MANIFEST))

    def write(
        self, table: ArchivedTable, *, chain: str, month: date, rows: Sequence[Row], at: datetime
    ) -> ManifestEntry:
        """Write rows to a new file, read it back and verify it; return its manifest entry."""
        written = arrow_table(table, rows)
        buffer = io.BytesIO()
        pq.write_table(written, buffer, compression="zstd")
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        path = part_path(service=table.service, table=table.name, chain=chain, month=month, sha256=digest)
        self.fs.makedirs(posixpath.dirname(self._at(path)), exist_ok=True)
        self.fs.pipe_file(self._at(path), data)
        times = [row[table.column_names.index(table.time_column)] for row in rows]
        entry = ManifestEntry(
            path=path,
            service=table.service,
            table=table.name,
            chain=chain,
            month=month_label(month),
            rows=len(rows),
            time_column=table.time_column,
            min_time=min(times),  # type: ignore[type-var]
            max_time=max(times),  # type: ignore[type-var]
            sha256=digest,
            bytes=len(data),
            archived_at=at,
        )
        back = self._verified(entry)
        # Compared as Arrow tables: as fast as the file is read, where Python rows are not.
        if not read_arrow(table, back).equals(written):
            raise ArchiveError(f"{path}: the file read back does not hold the rows written")
        return entry

    def _verified(self, entry: ManifestEntry) -> bytes:
        """Return a file's bytes after checking its size and checksum against the manifest entry."""
        try:
            data: bytes = self.fs.cat_file(self._at(entry.path))
        except FileNotFoundError:
            raise ArchiveError(f"{entry.path}: listed in the manifest but missing") from None
        if len(data) != entry.bytes or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ArchiveError(f"{entry.path}: its checksum differs from the manifest's")
        return data

    def read(self, entry: ManifestEntry, table: ArchivedTable) -> list[Row]:
        """Return a file's rows after checking its size, checksum and row count against the manifest."""
        rows = decode(table, self._verified(entry))
        if len(rows) != entry.rows:
            raise ArchiveError(f"{entry.path}: {len(rows)} rows where the manifest says {entry.rows}")
        return rows


@dataclass(frozen=True, slots=True)
class MonthArchived:
    """What archiving one table's month at a chain did."""

    service: str
    table: str
    chain: str
    month: str
    rows: int
    written: int
    deleted: int
    file: str | None


@dataclass(frozen=True, slots=True)
class MonthRestored:
    """What restoring one table's month at a chain did."""

    service: str
    table: str
    chain: str
    month: str
    archived: int
    restored: int


def _now() -> datetime:
    return datetime.now(UTC)


class Archiver:
    """Move history out of the services' tables into the archive store, and back."""

    def __init__(
        self,
        store: ArchiveStore,
        open_table: OpenTable,
        *,
        tables: Sequence[ArchivedTable] = TABLES,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.open_table = open_table
        self.tables = tuple(tables)
        self.clock = clock

    def check_window(self, retention_days: int) -> None:
        """Refuse a window shorter than what a service reads back of its own history."""
        for table in self.tables:
            if timedelta(days=retention_days) < table.keeps_at_least:
                raise ArchiveError(
                    f"{table.service}'s {table.name} reads back {table.keeps_at_least.days} days:"
                    f" a retention window of {retention_days} days would take what it still needs"
                )

    async def pending(
        self, *, retention_days: int, chains: Sequence[str] = (), now: datetime | None = None
    ) -> list[tuple[ArchivedTable, str, date]]:
        """Return each table's (chain, month) that an archive run would move out now."""
        self.check_window(retention_days)
        cutoff = archive_cutoff(now or self.clock(), retention_days)
        found = []
        for table in self.tables:
            async with self.open_table(table) as history:
                found += [(table, c, m) for c, m in await history.months(before=cutoff, chains=chains)]
        return found

    async def archive(
        self, *, retention_days: int, chains: Sequence[str] = (), now: datetime | None = None
    ) -> list[MonthArchived]:
        """Move every row older than the window's month into the archive; return what moved."""
        self.check_window(retention_days)
        cutoff = archive_cutoff(now or self.clock(), retention_days)
        done = []
        for table in self.tables:
            async with self.open_table(table) as history:
                for chain, month in await history.months(before=cutoff, chains=chains):
                    done.append(await self._archive_month(history, table, chain, month, cutoff))
        return done

    async def _archive_month(
        self, history: HistoryTable, table: ArchivedTable, chain: str, month: date, cutoff: datetime
    ) -> MonthArchived:
        start, end = month_span(month)
        rows = await history.rows(chain=chain, start=start, end=min(end, cutoff))
        label = month_label(month)
        # Rows a previous run already put in a file (it stopped before deleting, or they were
        # restored since) are not written again.
        archived: set[Row] = set()
        for entry in self.store.manifest().parts(
            service=table.service, table=table.name, chain=chain, month=label
        ):
            archived.update(self.store.read(entry, table))
        new = [row for row in rows if row not in archived]
        path = None
        if new:
            entry = self.store.write(table, chain=chain, month=month, rows=new, at=self.clock())
            self.store.save(self.store.manifest().with_file(entry))
            path = entry.path
        deleted = await history.delete(chain=chain, month=month, rows=rows) if rows else 0
        return MonthArchived(table.service, table.name, chain, label, len(rows), len(new), deleted, path)

    async def restore(
        self, *, chain: str, months: Sequence[date], services: Sequence[str] = ()
    ) -> list[MonthRestored]:
        """Put a chain's months back into every table (or these services'); rows already there stay."""
        manifest = self.store.manifest()
        tables = [t for t in self.tables if not services or t.service in services]

        def parts(table: ArchivedTable, month: date) -> list[ManifestEntry]:
            return manifest.parts(
                service=table.service, table=table.name, chain=chain, month=month_label(month)
            )

        missing = [month_label(m) for m in months if not any(parts(t, m) for t in tables)]
        if missing:
            raise ArchiveError(
                f"the archive at {self.store.url} holds no month {', '.join(missing)} of chain {chain!r}"
            )
        done = []
        for table in tables:
            async with self.open_table(table) as history:
                for month in months:
                    # A row archived twice (changed in between) comes back as it was last archived.
                    rows = [
                        row
                        for part in sorted(parts(table, month), key=lambda p: p.archived_at, reverse=True)
                        for row in self.store.read(part, table)
                    ]
                    if rows:
                        restored = await history.restore(chain=chain, month=month, rows=rows)
                        label = month_label(month)
                        done.append(
                            MonthRestored(table.service, table.name, chain, label, len(rows), restored)
                        )
        return done


def connector(database_urls: Mapping[str, str]) -> OpenTable:
    """Return how to reach each table: a connection as its service's own role, closed after use."""

    @asynccontextmanager
    async def open_table(table: ArchivedTable) -> AsyncIterator[HistoryTable]:
        try:
            conn = await asyncpg.connect(database_urls[table.service], timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise UnreachableError(f"{table.service}'s database is not reachable: {exc}") from None
        try:
            yield TableArchive(conn, table)
        finally:
            await conn.close()

    return open_table
