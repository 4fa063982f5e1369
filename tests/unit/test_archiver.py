"""`pricestream archive` without a database: the retention window, the files, the manifest, crash safety."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bargains.archive import HISTORY as BARGAINS_HISTORY
from catalogue.archive import HISTORY as CATALOGUE_HISTORY
from pricestream.archive import TABLES, ArchiveError, Archiver, ArchiveStore, decode, encode
from pricestream.retention import Manifest, archive_cutoff, month_span, parse_month, part_path
from scraper.archive import INGESTED_PRICES
from tests.fakes.archive import InMemoryHistoryTable, opener, synthetic_history

pytestmark = pytest.mark.unit

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=365)


def _world(chain: str = "acme", days: int = 365) -> dict[str, InMemoryHistoryTable]:
    """Return every history table with a year of a chain's synthetic rows."""
    return {
        f"{t.service}.{t.name}": InMemoryHistoryTable(
            t, synthetic_history(t, chain=chain, start=START, days=days, stores=2, skus=2)
        )
        for t in TABLES
    }


def _snapshot(tables: dict[str, InMemoryHistoryTable]) -> dict[str, list[object]]:
    """Return each table's rows in a fixed order."""
    return {name: sorted(t.rows_held, key=repr) for name, t in tables.items()}


def _archiver(tmp_path: Path, tables: dict[str, InMemoryHistoryTable]) -> Archiver:
    return Archiver(ArchiveStore(str(tmp_path / "archive")), opener(tables), clock=lambda: NOW)


def test_the_cutoff_is_a_month_start_that_keeps_at_least_the_window() -> None:
    for day in range(0, 400, 13):
        now = START + timedelta(days=day, hours=5)
        cutoff = archive_cutoff(now, 90)
        assert (cutoff.day, cutoff.hour, cutoff.tzinfo) == (1, 0, UTC)
        assert timedelta(days=90) <= now - cutoff < timedelta(days=90 + 31)
    with pytest.raises(ValueError, match="at least one day"):
        archive_cutoff(NOW, 0)


def test_months_are_written_and_spanned_in_utc() -> None:
    assert parse_month("2026-01") == date(2026, 1, 1)
    assert month_span(date(2025, 12, 1)) == (
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    for bad in ("2026-13", "2026-1", "January", "2026-01-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)


def test_a_file_is_named_by_its_content_and_the_same_rows_give_the_same_bytes() -> None:
    rows = synthetic_history(CATALOGUE_HISTORY, chain="a/b c", start=START, days=30)
    assert encode(CATALOGUE_HISTORY, rows) == encode(CATALOGUE_HISTORY, list(rows))
    assert decode(CATALOGUE_HISTORY, encode(CATALOGUE_HISTORY, rows)) == rows
    path = part_path(
        service="catalogue", table="history", chain="a/b c", month=date(2025, 1, 1), sha256="ab" * 32
    )
    assert path == "catalogue/history/chain=a%2Fb%20c/month=2025-01/part-abababababababab.parquet"


def test_a_file_that_fails_its_check_is_refused(tmp_path: Path) -> None:
    store = ArchiveStore(str(tmp_path))
    rows = synthetic_history(INGESTED_PRICES, chain="acme", start=START, days=10)
    entry = store.write(INGESTED_PRICES, chain="acme", month=date(2025, 1, 1), rows=rows, at=NOW)
    assert (entry.rows, entry.min_time, entry.sha256[:16]) == (len(rows), rows[0][3], entry.path[-24:-8])
    assert store.read(entry, INGESTED_PRICES) == rows
    file = tmp_path / entry.path
    file.write_bytes(file.read_bytes()[:-1] + b"x")
    with pytest.raises(ArchiveError, match="checksum"):
        store.read(entry, INGESTED_PRICES)
    file.unlink()
    with pytest.raises(ArchiveError, match="missing"):
        store.read(entry, INGESTED_PRICES)


async def test_a_year_leaves_only_the_window_in_the_tables_and_every_month_comes_back(tmp_path: Path) -> None:
    tables = _world()
    before = _snapshot(tables)
    archiver = _archiver(tmp_path, tables)

    done = await archiver.archive(retention_days=90)

    cutoff = archive_cutoff(NOW, 90)
    for name, table in tables.items():
        assert table.rows_held, name
        assert all(table._time(r) >= cutoff for r in table.rows_held), name
        moved = [d for d in done if f"{d.service}.{d.table}" == name]
        assert sum(d.deleted for d in moved) == len(before[name]) - len(table.rows_held)
    manifest = archiver.store.manifest()
    assert {f.month for f in manifest.files} == {f"2025-{m:02d}" for m in range(1, 10)}
    assert len(manifest.files) == 9 * len(TABLES)
    assert tables["catalogue.history"].archived_months == {("acme", date(2025, m, 1)) for m in range(1, 10)}

    restored = await archiver.restore(chain="acme", months=[date(2025, m, 1) for m in range(1, 10)])
    assert len(restored) == 9 * len(TABLES)
    assert all(r.restored == r.archived > 0 for r in restored)
    assert _snapshot(tables) == before
    assert not tables["catalogue.history"].archived_months

    # Restoring again doubles nothing; archiving again writes no new file.
    again = await archiver.restore(chain="acme", months=[date(2025, 1, 1)])
    assert all(r.restored == 0 for r in again)
    rerun = await archiver.archive(retention_days=90)
    assert all(d.written == 0 and d.file is None and d.deleted == d.rows for d in rerun)
    assert archiver.store.manifest() == manifest


async def test_a_crash_after_the_file_is_written_loses_nothing_and_a_rerun_finishes(tmp_path: Path) -> None:
    tables = _world(days=200)
    before = _snapshot(tables)
    for table in tables.values():
        table.fail_deletes = True
    archiver = _archiver(tmp_path, tables)

    with pytest.raises(ConnectionResetError):
        await archiver.archive(retention_days=90)

    # The first month's file is written, verified and listed; every row is still in its table.
    assert _snapshot(tables) == before
    written = archiver.store.manifest().files
    assert len(written) == 1
    assert (tmp_path / "archive" / written[0].path).exists()

    for table in tables.values():
        table.fail_deletes = False
    done = await archiver.archive(retention_days=90)
    first = next(
        d for d in done if (d.service, d.table, d.month) == (written[0].service, written[0].table, "2025-01")
    )
    assert (first.written, first.file, first.deleted) == (0, None, first.rows)
    paths = [f.path for f in archiver.store.manifest().files]
    assert len(paths) == len(set(paths)) == 7 * len(TABLES)  # January to July, once each


async def test_a_row_changed_after_archiving_stays_and_goes_in_a_later_part(tmp_path: Path) -> None:
    tables = {"catalogue.history": InMemoryHistoryTable(CATALOGUE_HISTORY)}
    rows = synthetic_history(CATALOGUE_HISTORY, chain="acme", start=START, days=28)
    tables["catalogue.history"].rows_held = list(rows)
    archiver = Archiver(
        ArchiveStore(str(tmp_path)), opener(tables), tables=[CATALOGUE_HISTORY], clock=lambda: NOW
    )
    await archiver.archive(retention_days=90)
    changed = (*rows[0][:5], 999, None)
    tables["catalogue.history"].rows_held = [changed]

    done = await archiver.archive(retention_days=90)

    assert [(d.written, d.deleted) for d in done] == [(1, 1)]
    assert len(archiver.store.manifest().files) == 2
    restored = await archiver.restore(chain="acme", months=[date(2025, 1, 1)])
    # The newest version of a row archived twice comes back.
    assert restored[0].restored == len(rows)
    assert changed in tables["catalogue.history"].rows_held


async def test_only_the_chains_asked_for_move(tmp_path: Path) -> None:
    tables = {"scraper.ingested_prices": InMemoryHistoryTable(INGESTED_PRICES)}
    for chain in ("acme", "other"):
        tables["scraper.ingested_prices"].rows_held += synthetic_history(
            INGESTED_PRICES, chain=chain, start=START, days=59
        )
    archiver = Archiver(
        ArchiveStore(str(tmp_path)), opener(tables), tables=[INGESTED_PRICES], clock=lambda: NOW
    )
    pending = await archiver.pending(retention_days=90, chains=["acme"])
    assert [(c, m) for _, c, m in pending] == [("acme", date(2025, 1, 1)), ("acme", date(2025, 2, 1))]
    await archiver.archive(retention_days=90, chains=["acme"])
    assert {r[0] for r in tables["scraper.ingested_prices"].rows_held} == {"other"}
    # A month the archive lacks stops the restore before anything comes back.
    with pytest.raises(ArchiveError, match="holds no month 2024-12 of chain 'acme'"):
        await archiver.restore(chain="acme", months=[date(2025, 1, 1), date(2024, 12, 1)])
    assert {r[0] for r in tables["scraper.ingested_prices"].rows_held} == {"other"}


async def test_a_window_shorter_than_a_service_reads_back_is_refused_and_an_unknown_month_is_an_error(
    tmp_path: Path,
) -> None:
    tables = _world(days=120)
    archiver = _archiver(tmp_path, tables)
    with pytest.raises(ArchiveError, match="bargains's history reads back 90 days"):
        await archiver.archive(retention_days=30)
    assert BARGAINS_HISTORY.keeps_at_least == timedelta(days=90)
    assert all(t.rows_held for t in tables.values())
    with pytest.raises(ArchiveError, match="holds no month 2024-12"):
        await archiver.restore(chain="acme", months=[date(2024, 12, 1)])
    assert archiver.store.manifest() == Manifest()
    assert all(t.rows_held for t in tables.values())
