"""`pricestream archive`: move old price history into Parquet files, list them, restore a month."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pricestream.archive import TABLES, ArchiveError, Archiver, ArchiveSettings, ArchiveStore, connector
from pricestream.config import StackConfig, find_home
from pricestream.processes import UnreachableError
from pricestream.retention import archive_cutoff, parse_month
from pricestream.stack import Stack

archive_app = typer.Typer(
    help="Price history older than the retention window: into Parquet files (per chain and month), and back."
)
console = Console()
errors = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(envvar="PRICESTREAM_HOME", help="State folder (default: .pricestream/ in the project)"),
]
ToOption = Annotated[
    str | None,
    typer.Option("--to", help="Archive folder or fsspec URL [PRICESTREAM_ARCHIVE_URL or <home>/archive]"),
]


def _archiver(home: Path | None, to: str | None) -> tuple[Archiver, ArchiveSettings]:
    """Return an archiver over the services' databases, each reached as the service's own role."""
    settings = ArchiveSettings()
    stack = Stack(StackConfig.load(home.resolve() if home else find_home()))
    urls = dict(settings.database_urls)
    missing = sorted({t.service for t in TABLES} - set(urls))
    if missing and not stack.config.state_file.exists():
        raise UnreachableError(
            f"no stack at {stack.config.home}: run `pricestream up` (or give --home,"
            " or PRICESTREAM_ARCHIVE_DATABASE_URLS for another deployment)"
        )
    # The local stack's roles, as each service itself connects.
    urls |= {name: stack.service_process(name).env[f"{name.upper()}_DATABASE_URL"] for name in missing}
    url = to or settings.archive_url(stack.config.home)
    return Archiver(ArchiveStore(url), connector(urls)), settings


def _failed(exc: ArchiveError) -> typer.Exit:
    errors.print(f"[red]archive:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@archive_app.callback(invoke_without_command=True)
def archive(
    ctx: typer.Context,
    home: HomeOption = None,
    to: ToOption = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Days of history kept in the tables [PRICESTREAM_ARCHIVE_RETENTION_DAYS or 90]"
        ),
    ] = None,
    chain: Annotated[list[str] | None, typer.Option(help="Only these chains (repeat the option)")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only show the months that would move")] = False,
) -> None:
    """Move every month of history older than the retention window into the archive."""
    if ctx.invoked_subcommand is not None:
        return
    archiver, settings = _archiver(home, to)
    days = retention_days or settings.retention_days
    try:
        if dry_run:
            pending = asyncio.run(archiver.pending(retention_days=days, chains=chain or []))
            for history, c, month in pending:
                console.print(f"would archive {history.service}.{history.name} {c} {month:%Y-%m}")
            console.print(f"{len(pending)} months would move to {archiver.store.url}")
            return
        done = asyncio.run(archiver.archive(retention_days=days, chains=chain or []))
    except ArchiveError as exc:
        raise _failed(exc) from None
    cutoff = archive_cutoff(archiver.clock(), days)
    table = Table(title=f"archived history before {cutoff:%Y-%m-%d} to {archiver.store.url}")
    for column in ("table", "chain", "month", "rows", "written", "deleted", "file"):
        table.add_column(
            column, justify="right" if column in ("rows", "written", "deleted") else "left", overflow="fold"
        )
    for d in done:
        table.add_row(
            f"{d.service}.{d.table}",
            d.chain,
            d.month,
            str(d.rows),
            str(d.written),
            str(d.deleted),
            d.file or "-",
        )
    console.print(table if done else f"nothing older than {cutoff:%Y-%m-%d} to archive")


@archive_app.command("restore")
def restore(
    chain: Annotated[str, typer.Option(help="The chain whose month comes back")],
    month: Annotated[list[str], typer.Option(help="The month, YYYY-MM (repeat the option for more)")],
    home: HomeOption = None,
    to: ToOption = None,
    service: Annotated[list[str] | None, typer.Option(help="Only these services' tables (repeat)")] = None,
) -> None:
    """Bring a chain's months of history back into the tables (rows already there are kept, none doubled)."""
    try:
        months = [parse_month(m) for m in month]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    archiver, _ = _archiver(home, to)
    try:
        done = asyncio.run(archiver.restore(chain=chain, months=months, services=service or []))
    except ArchiveError as exc:
        raise _failed(exc) from None
    table = Table(title=f"restored {chain} {', '.join(month)} from {archiver.store.url}")
    for column in ("table", "month", "archived", "restored"):
        table.add_column(column, justify="left" if column in ("table", "month") else "right")
    for d in done:
        table.add_row(f"{d.service}.{d.table}", d.month, str(d.archived), str(d.restored))
    console.print(table)
    console.print(
        "The next `pricestream archive` moves them out again unless the retention window covers them."
    )


@archive_app.command("list")
def list_files(
    home: HomeOption = None,
    to: ToOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as one JSON document")] = False,
) -> None:
    """Show the archive's manifest: each file with its rows, time span and checksum."""
    archiver, _ = _archiver(home, to)
    manifest = archiver.store.manifest()
    if json_out:
        typer.echo(manifest.model_dump_json(indent=2))
        return
    table = Table(title=f"{archiver.store.url}: {len(manifest.files)} files")
    for column in ("table", "chain", "month", "rows", "from", "to", "sha256"):
        table.add_column(column, justify="right" if column == "rows" else "left", overflow="fold")
    for f in manifest.files:
        table.add_row(
            f"{f.service}.{f.table}",
            f.chain,
            f.month,
            str(f.rows),
            f"{f.min_time:%Y-%m-%d}",
            f"{f.max_time:%Y-%m-%d}",
            f.sha256[:16],
        )
    console.print(table)
