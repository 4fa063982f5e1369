"""The archive's rules, without IO: the retention window, months, file names and the manifest."""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def archive_cutoff(now: datetime, retention_days: int) -> datetime:
    """Return the start (UTC) of the month holding `now - retention_days`: rows before it are archived.

    Whole months only: every row of a month leaves at once, so a month is one file per chain, and
    at least `retention_days` of history always stay.
    """
    if retention_days < 1:
        raise ValueError("the retention window is at least one day")
    edge = (now - timedelta(days=retention_days)).astimezone(UTC)
    return datetime(edge.year, edge.month, 1, tzinfo=UTC)


def parse_month(text: str) -> date:
    """Return the first day of a month written YYYY-MM."""
    found = MONTH.match(text)
    if not found:
        raise ValueError(f"month {text!r}: write it YYYY-MM, such as 2026-01")
    return date(int(found[1]), int(found[2]), 1)


def month_label(month: date) -> str:
    """Return a month as YYYY-MM."""
    return f"{month.year:04d}-{month.month:02d}"


def month_span(month: date) -> tuple[datetime, datetime]:
    """Return a UTC month's first instant and the next month's first instant."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, following


def part_path(*, service: str, table: str, chain: str, month: date, sha256: str) -> str:
    """Return where a part of a month's rows lies, relative to the archive's root.

    Named by its content's checksum: writing the same rows again writes the same file.
    """
    folder = f"{service}/{table}/chain={quote(chain, safe='')}/month={month_label(month)}"
    return f"{folder}/part-{sha256[:16]}.parquet"


class ManifestEntry(BaseModel):
    """One archive file: what it holds and how to check it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    service: str
    table: str
    chain: str
    month: str
    rows: int
    time_column: str
    min_time: datetime
    max_time: datetime
    sha256: str
    bytes: int
    archived_at: datetime


class Manifest(BaseModel):
    """Every file of the archive; written after a file is verified and before its rows are deleted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    files: tuple[ManifestEntry, ...] = ()

    def parts(self, *, service: str, table: str, chain: str, month: str) -> list[ManifestEntry]:
        """Return the files of one table's month at a chain."""
        return [
            f for f in self.files if (f.service, f.table, f.chain, f.month) == (service, table, chain, month)
        ]

    def with_file(self, entry: ManifestEntry) -> "Manifest":
        """Return the manifest with a file added (a file already listed is listed once)."""
        if any(f.path == entry.path for f in self.files):
            return self
        ordered = sorted((*self.files, entry), key=lambda f: (f.service, f.table, f.chain, f.month, f.path))
        return Manifest(files=tuple(ordered))
