"""`pricestream archive` against the stack's PostgreSQL: a year of history, crash safety, the API's watermark.

Each test writes a made-up chain's synthetic rows straight into the services' history tables (as
each service's own role) and archives that chain only, so other tests' data is never touched.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from catalogue.domain.search import search_text
from pricestream.archive import TABLES, Archiver, ArchiveStore, connector
from pricestream.cli import app
from pricestream.retention import Manifest, archive_cutoff
from pricestream.stack import Stack
from servicekit.archive import ArchivedTable, Row, TableArchive
from tests.fakes.archive import synthetic_history

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=365)


def _urls(stack: Stack) -> dict[str, str]:
    return {
        t.service: stack.service_process(t.service).env[f"{t.service.upper()}_DATABASE_URL"] for t in TABLES
    }


@pytest.fixture
async def chain(stack: Stack) -> AsyncIterator[str]:
    """A chain of its own for one test, whose rows are removed afterwards."""
    name = f"arch-{uuid.uuid4().hex[:8]}"
    yield name
    for table in TABLES:
        conn = await asyncpg.connect(_urls(stack)[table.service])
        try:
            await conn.execute(f"DELETE FROM {table.name} WHERE chain = $1", name)
            if table.service == "catalogue":
                await conn.execute("DELETE FROM archived_months WHERE chain = $1", name)
                await conn.execute("DELETE FROM products WHERE chain = $1", name)
                await conn.execute("DELETE FROM prices WHERE chain = $1", name)
        finally:
            await conn.close()


async def _insert(stack: Stack, table: ArchivedTable, rows: list[Row]) -> None:
    conn = await asyncpg.connect(_urls(stack)[table.service])
    try:
        await conn.copy_records_to_table(table.name, records=rows, columns=list(table.column_names))
    finally:
        await conn.close()


async def _held(stack: Stack, table: ArchivedTable, chain: str) -> list[Row]:
    conn = await asyncpg.connect(_urls(stack)[table.service])
    try:
        records = await conn.fetch(
            f"SELECT {', '.join(table.column_names)} FROM {table.name} WHERE chain = $1", chain
        )
    finally:
        await conn.close()
    return sorted((tuple(r.values()) for r in records), key=repr)


def _time(table: ArchivedTable, row: Row) -> datetime:
    value = row[table.column_names.index(table.time_column)]
    assert isinstance(value, datetime)
    return value


async def _year(stack: Stack, chain: str, days: int = 365) -> dict[str, list[Row]]:
    """Write `days` of a chain's history into every history table; return it per table."""
    written = {}
    for table in TABLES:
        rows = synthetic_history(table, chain=chain, start=START, days=days, stores=2, skus=3)
        await _insert(stack, table, rows)
        written[f"{table.service}.{table.name}"] = sorted(rows, key=repr)
    return written


async def test_a_year_of_history_leaves_the_window_hot_and_every_archived_price_restorable(
    stack: Stack, chain: str, tmp_path: Path
) -> None:
    written = await _year(stack, chain)
    archiver = Archiver(ArchiveStore(str(tmp_path / "archive")), connector(_urls(stack)))

    done = await archiver.archive(retention_days=90, chains=[chain], now=NOW)

    cutoff = archive_cutoff(NOW, 90)
    for table in TABLES:
        name = f"{table.service}.{table.name}"
        held = await _held(stack, table, chain)
        assert held == [r for r in written[name] if _time(table, r) >= cutoff], name
        # Bounded: about a third of the year stays (the window, rounded down to a month start).
        assert 0 < len(held) < len(written[name]) * 0.4, name
        assert sum(d.deleted for d in done if f"{d.service}.{d.table}" == name) == len(written[name]) - len(
            held
        )
    assert {f.month for f in archiver.store.manifest().files} == {f"2024-{m:02d}" for m in range(1, 10)}

    await archiver.restore(chain=chain, months=[date(2024, m, 1) for m in range(1, 10)])
    for table in TABLES:
        assert await _held(stack, table, chain) == written[f"{table.service}.{table.name}"]
    again = await archiver.restore(chain=chain, months=[date(2024, 1, 1)])
    assert [r.restored for r in again] == [0] * len(TABLES)


async def test_a_failure_before_the_delete_commits_leaves_every_row_and_a_rerun_finishes(
    stack: Stack, chain: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = await _year(stack, chain, days=45)
    archiver = Archiver(ArchiveStore(str(tmp_path / "archive")), connector(_urls(stack)))

    async def crash(*_args: object, **_kwargs: object) -> None:
        raise ConnectionResetError("the operator's connection dropped before the commit")

    # The first month's delete has run inside its transaction when this fails.
    monkeypatch.setattr(TableArchive, "archived", crash)
    with pytest.raises(ConnectionResetError):
        await archiver.archive(retention_days=90, chains=[chain], now=NOW)
    for table in TABLES:
        assert await _held(stack, table, chain) == written[f"{table.service}.{table.name}"]
    listed = archiver.store.manifest().files
    assert [(f.service, f.month) for f in listed] == [(TABLES[0].service, "2024-01")]
    assert (tmp_path / "archive" / listed[0].path).exists()

    monkeypatch.undo()
    done = await archiver.archive(retention_days=90, chains=[chain], now=NOW)
    assert [d.written == 0 for d in done if d.month == "2024-01"] == [True, False, False]
    for table in TABLES:
        assert await _held(stack, table, chain) == []
    paths = [f.path for f in archiver.store.manifest().files]
    assert len(paths) == len(set(paths)) == 2 * len(TABLES)


async def test_the_product_api_and_page_say_when_older_history_lies_in_the_archive(
    stack: Stack, chain: str, tmp_path: Path
) -> None:
    await _year(stack, chain, days=120)
    conn = await asyncpg.connect(_urls(stack)["catalogue"])
    try:
        await conn.execute(
            """INSERT INTO products (chain, sku, name, search_text, observed_at)
               VALUES ($1, 'sku-0', $2, $3, $4)""",
            chain,
            "Archived oats",
            search_text("Archived oats", None),
            START,
        )
        # A current price at store s0, its run begun at this sighting: the product's history is that store's.
        await conn.execute(
            """INSERT INTO prices (chain, store_id, sku, price_cents, available, sold_by, observed_at,
                                  run_starts_at)
               VALUES ($1, 's0', 'sku-0', 100, true, 'each', $2, $2)""",
            chain,
            datetime.now(UTC),
        )
    finally:
        await conn.close()
    url = f"{stack.service_url('catalogue')}"
    archiver = Archiver(ArchiveStore(str(tmp_path / "archive")), connector(_urls(stack)))
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        before = (await client.get(f"/v1/products/{chain}/sku-0")).json()
        assert before["archived_before"] is None
        bargains = httpx.get(f"{stack.service_url('bargains')}/v1/products/{chain}/sku-0/history", timeout=10)
        assert bargains.json()["archived_before"] is None
        assert bargains.json()["history"]
        assert before["history"]

        await archiver.archive(retention_days=90, chains=[chain], now=NOW)

        after = (await client.get(f"/v1/products/{chain}/sku-0")).json()
        assert after["archived_before"] == "2024-05-01T00:00:00Z"
        bargains = httpx.get(f"{stack.service_url('bargains')}/v1/products/{chain}/sku-0/history", timeout=10)
        assert (bargains.json()["archived_before"], bargains.json()["history"]) == (
            "2024-05-01T00:00:00Z",
            [],
        )
        page = await client.get(f"/products/{chain}/sku-0")
        assert f"{chain}: price history that ended before 1 May 2024 lies in the archive." in page.text

        await archiver.restore(chain=chain, months=[date(2024, 4, 1)])
        partly = (await client.get(f"/v1/products/{chain}/sku-0")).json()
        assert partly["archived_before"] == "2024-04-01T00:00:00Z"


def test_the_cli_archives_lists_and_restores_a_month(stack: Stack, chain: str, tmp_path: Path) -> None:
    written = asyncio.run(_year(stack, chain, days=20))
    home = ["--home", str(stack.config.home)]
    to = ["--to", f"file://{tmp_path / 'archive'}"]
    runner = CliRunner()

    archived = runner.invoke(app, ["archive", *home, *to, "--chain", chain])
    assert archived.exit_code == 0, archived.output
    assert "2024-01" in archived.output
    assert all(asyncio.run(_held(stack, t, chain)) == [] for t in TABLES)

    listed = runner.invoke(app, ["archive", "list", *home, *to, "--json"])
    assert listed.exit_code == 0, listed.output
    manifest = Manifest.model_validate_json(listed.stdout)
    assert {(f.service, f.table) for f in manifest.files} == {(t.service, t.name) for t in TABLES}
    assert sum(f.rows for f in manifest.files) == sum(len(rows) for rows in written.values())

    restored = runner.invoke(app, ["archive", "restore", *home, *to, "--chain", chain, "--month", "2024-01"])
    assert restored.exit_code == 0, restored.output
    for table in TABLES:
        assert asyncio.run(_held(stack, table, chain)) == written[f"{table.service}.{table.name}"]

    bad = runner.invoke(app, ["archive", "restore", *home, *to, "--chain", chain, "--month", "2024-13"])
    assert bad.exit_code == 2
    absent = runner.invoke(app, ["archive", "restore", *home, *to, "--chain", chain, "--month", "2023-01"])
    assert absent.exit_code == 1
    assert "holds no month 2023-01" in absent.output


async def test_a_run_a_sweep_holds_stays_whatever_its_own_end_says(
    stack: Stack, chain: str, tmp_path: Path
) -> None:
    """Its own end is old, but it was last seen when its sweep was: it is still a product's newest run."""
    (history,) = [t for t in TABLES if t.service == "bargains"]
    old = START + timedelta(days=10)
    runs: list[Row] = [
        (chain, "s1", sku, 250, None, START, old, None, None, None, "each") for sku in ("held", "let-go")
    ]
    await _insert(stack, history, runs)
    conn = await asyncpg.connect(_urls(stack)["bargains"])
    try:
        await conn.execute("INSERT INTO sweeps VALUES ($1, 's1', 7, $2)", chain, NOW - timedelta(days=1))
        await conn.execute("UPDATE history SET sweep = 7 WHERE chain = $1 AND sku = 'held'", chain)
        archiver = Archiver(ArchiveStore(str(tmp_path / "archive")), connector(_urls(stack)))
        await archiver.archive(retention_days=90, chains=[chain], now=NOW)
        left = await conn.fetch("SELECT sku, ends_at FROM runs WHERE chain = $1", chain)
    finally:
        await conn.execute("DELETE FROM sweeps WHERE chain = $1", chain)
        await conn.close()
    assert [(r["sku"], r["ends_at"]) for r in left] == [("held", NOW - timedelta(days=1))]
