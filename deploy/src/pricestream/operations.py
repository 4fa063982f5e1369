"""Day-to-day operator commands: read a component's log, ask for a re-scrape, count prices per store."""

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from rich.table import Table

from catalogue.queries import CatalogueQueries, StoreCount
from catalogue.settings import CatalogueSettings
from contracts import CODEC, SERVICES, topic_for
from contracts.events import RescrapeRequested
from contracts.events.v1 import RescrapeRequestedPayload
from pricestream.processes import StackError, StackUsageError, UnreachableError
from pricestream.stack import Stack

PRODUCER = "pricestream-cli"
LOG_NAMES = (*SERVICES, "storefront", "broker", "postgres")
"""Components writing a log under the stack's home (`logs/NAME.log`); replicas write `NAME-2.log`..."""


def log_file(stack: Stack, name: str) -> Path:
    """Return a component's log file; a usage error for a name the stack has no log of."""
    logs = stack.config.home / "logs"
    path = logs / f"{name}.log"
    if path.exists():
        return path
    known = sorted(p.stem for p in logs.glob("*.log")) if logs.is_dir() else []
    if name in LOG_NAMES and not known:
        raise UnreachableError(f"no logs in {logs}: no stack was up there (`pricestream up`, or give --home)")
    raise StackUsageError(f"no log of {name!r} in {logs}: one of {', '.join(known or LOG_NAMES)}")


def tail_log(path: Path, lines: int) -> tuple[list[str], int]:
    """Return a log's last lines and the offset where its next line will start."""
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace").splitlines()
    return (text[-lines:] if lines else []), len(data)


def follow_log(
    path: Path, offset: int, *, poll_s: float = 0.25, stop: Callable[[], bool] = lambda: False
) -> Iterator[str]:
    """Yield each line written to a log after `offset`, as it comes, until `stop()` (or forever)."""
    pending = b""
    while not stop():
        size = path.stat().st_size if path.exists() else 0
        if size < offset:
            # The file was replaced or truncated (a fresh home): read it from its start.
            offset = 0
        if size == offset:
            time.sleep(poll_s)
            continue
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        offset += len(chunk)
        *complete, pending = (pending + chunk).split(b"\n")
        yield from (line.decode("utf-8", errors="replace") for line in complete)


def request_rescrape(stack: Stack, chain: str, store_id: str) -> RescrapeRequested:
    """Publish a manual re-scrape request for a store the scraper knows; return the event sent."""
    try:
        payload = RescrapeRequestedPayload(chain=chain, store_id=store_id, reason="manual")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise StackUsageError(f"not a chain and store id: {problems}") from None
    scraper = stack.service_process("scraper").url
    stores = httpx.get(f"{scraper}/v1/stores", params={"chain": chain}, timeout=10)
    if stores.status_code != 200:
        raise StackError(f"the scraper's store directory failed: {stores.status_code} {stores.text[:300]}")
    known = {row["store_id"] for row in stores.json()["stores"]}
    if store_id not in known:
        has = f"{len(known)} stores of {chain}" if known else "none yet (run `pricestream scrape`)"
        raise StackUsageError(
            f"the scraper knows no store {store_id!r} of {chain!r}; its directory has {has}"
        )
    event = RescrapeRequested.new(producer=PRODUCER, payload=payload)
    asyncio.run(_publish(stack.config.bootstrap_servers, event))
    return event


async def _publish(bootstrap: str, event: RescrapeRequested) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=PRODUCER)
    await producer.start()
    try:
        record = CODEC.encode(event)
        name = topic_for(RescrapeRequested).name
        await producer.send_and_wait(name, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Counts:
    """Prices held and answered per store, read from the catalogue's database, as of a freshness bound."""

    fresh_after: datetime
    stores: list[StoreCount]

    def per_chain(self) -> dict[str, dict[str, int]]:
        """Return stores, prices held and prices answered summed per chain."""
        chains: dict[str, dict[str, int]] = {}
        for row in self.stores:
            totals = chains.setdefault(row.chain, {"stores": 0, "held": 0, "answered": 0})
            totals["stores"] += 1
            totals["held"] += row.held
            totals["answered"] += row.answered
        return chains


def store_counts(stack: Stack, *, chain: str | None, now: datetime | None = None) -> Counts:
    """Count, per store, the prices the catalogue holds of it and those it answers for it.

    Read from the catalogue's database with its own read queries: held is the prices stored
    for the store, answered the fresh prices its API answers for it (a member's through its
    group's anchor), within the catalogue's freshness window.
    """
    dsn = stack.service_process("catalogue").env["CATALOGUE_DATABASE_URL"]
    fresh_after = (now or datetime.now(UTC)) - timedelta(days=CatalogueSettings().freshness_days)

    async def read() -> list[StoreCount]:
        conn = await asyncpg.connect(dsn)
        try:
            return await CatalogueQueries(conn, fresh_after=fresh_after).store_counts(chain=chain)
        finally:
            await conn.close()

    return Counts(fresh_after=fresh_after, stores=asyncio.run(read()))


def counts_table(counts: Counts) -> Table:
    """Show each store's prices held and answered, with each chain's totals."""
    since = f"{counts.fresh_after:%Y-%m-%d}"
    table = Table(title=f"prices held and answered per store (answered: observed since {since})")
    for column in ("chain", "store", "answered by", "held", "answered"):
        table.add_column(column, justify="right" if column in ("held", "answered") else "left")
    for row in counts.stores:
        anchor = "itself" if row.anchor_store_id == row.store_id else row.anchor_store_id
        table.add_row(row.chain, row.store_id, anchor, f"{row.held:,}", f"{row.answered:,}")
    for chain, totals in counts.per_chain().items():
        table.add_row(
            f"[bold]{chain}[/bold]",
            f"[bold]{totals['stores']} stores[/bold]",
            "",
            f"[bold]{totals['held']:,}[/bold]",
            f"[bold]{totals['answered']:,}[/bold]",
        )
    return table
