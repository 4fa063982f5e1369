"""Benchmark: bargains' and the catalogue's fold of prices, in process, on a PostgreSQL of its own.

Runs one service's `fold_prices` (service layer and PostgreSQL repository, each batch in a
transaction) over bench-shaped prices: a round 20 days ago and one yesterday for every store
(in batches of 50 events, as the services take them), then a round with a tenth of the
prices 30% off, one event per batch (the latency phase's shape). Prints prices/s per round
and a checksum of what was kept, so two versions of the code can be compared (run each with
its own PYTHONPATH). Nothing of the broker or of decoding is measured, but the events are
decoded from JSON beforehand, so the folds see the timestamps a service sees, and the garbage
collector runs as in a service process (`--gc-threshold 700` for Python's default).

    .venv/bin/python -m benchmarks.price_folds bargains --stores 200 --price-points 5
"""

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bargains import service_layer as bargains_layer
from bargains.domain.bargains import Policy
from bargains.repository import PostgresBargainsRepository
from catalogue import service_layer as catalogue_layer
from catalogue.repository import PostgresCatalogueRepository
from contracts import Event
from contracts.events import PriceObservation
from contracts.events.v1 import PageRef, PriceColumns, PricesScrapedPayload
from pricestream.ports import free_port
from pricestream.postgres import EmbeddedPostgres
from servicekit.db import migrate
from servicekit.runtime import collect_garbage_less_often
from servicekit.settings import ServiceSettings

PRODUCTS = 500
BATCH = 50
CHECKSUMS = {
    "bargains": "SELECT md5(string_agg(bargain_id || reason, ',' ORDER BY bargain_id)) FROM svc.bargains",
    # Every run: those that ended (history) and each price's current one (kept with the price).
    # {prices}: the current prices as read (a sweep may hold their last sightings), where a view has them.
    "catalogue": """SELECT md5(string_agg(store_id || sku || price_cents || (ends_at - starts_at)::text, ','
                                          ORDER BY store_id, sku, starts_at))
                    FROM (SELECT store_id, sku, price_cents, starts_at, ends_at FROM svc.history
                          UNION ALL
                          SELECT store_id, sku, price_cents, run_starts_at, observed_at
                          FROM {prices}) AS runs""",
    # Times relative to the first sighting: each run's rounds are dated from its own start.
    "catalogue current prices": """SELECT md5(string_agg(concat_ws('|', chain, store_id, sku, price_cents,
                                                   was_price_cents, available, sold_by, observed_at - first),
                                         ',' ORDER BY chain, store_id, sku))
                                   FROM {prices}, (SELECT min(observed_at) AS first FROM {prices}) m""",
}


class Work:
    """A unit of work over a connection whose transaction the benchmark owns."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.published: list[Event] = []

    def publish(self, events: Any) -> None:
        """Keep the events a fold announces."""
        self.published.extend(events)


def price_round(at: datetime, stores: list[tuple[str, list[int]]]) -> list[PricesScrapedPayload]:
    """Return one event per store of all its prices as columns (as the scraper sends them),
    observed at one time, decoded from JSON."""
    return [
        # Through JSON: a decoded timestamp carries pydantic's own tzinfo, which the folds then compare.
        PricesScrapedPayload.model_validate_json(
            PricesScrapedPayload(
                chain="bench",
                store_id=store,
                source="ingest",
                page=PageRef(category="c", page=1),
                prices=PriceColumns.of(
                    [
                        PriceObservation(sku=f"p{i}", price_cents=p, was_price_cents=None, observed_at=at)
                        for i, p in enumerate(prices)
                    ]
                ),
            ).model_dump_json()
        )
        for store, prices in stores
    ]


async def _fold(
    service: str, conn: asyncpg.Connection, batch: list[PricesScrapedPayload], now: datetime
) -> None:
    """Fold one batch in a transaction with the service's own code."""
    async with conn.transaction():
        if service == "bargains":
            work = Work(PostgresBargainsRepository(conn))
            await bargains_layer.fold_prices(work, batch, now=now, policy=Policy())  # type: ignore[arg-type]
        else:
            await catalogue_layer.fold_prices(Work(PostgresCatalogueRepository(conn)), batch)  # type: ignore[arg-type]


async def run(service: str, stores: int, price_points: int) -> None:
    """Fold the three rounds and print their rates and the checksum."""
    layer = bargains_layer if service == "bargains" else catalogue_layer
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="price-folds-")), free_port())
    pg.init()
    pg.start()
    try:
        conn = await asyncpg.connect(pg.dsn())
        await conn.execute("CREATE SCHEMA extensions; CREATE EXTENSION pg_trgm SCHEMA extensions")
        await conn.execute("CREATE SCHEMA svc; SET search_path TO svc, extensions")
        await migrate(conn, schema="svc", directory=Path(str(layer.__file__)).parent / "migrations")
        rng = random.Random(11)
        base = [rng.randint(99, 2999) for _ in range(PRODUCTS)]
        levels = [0.9 + 0.2 * n / max(1, price_points - 1) for n in range(price_points)]
        priced = [
            (
                f"l{s:05d}",
                [round(p * (rng.choice(levels) if levels else rng.uniform(0.9, 1.1))) for p in base],
            )
            for s in range(stores)
        ]
        discounted = [(s, [round(p * 0.7) if rng.random() < 0.1 else p for p in ps]) for s, ps in priced]
        now = datetime.now(UTC)
        rounds = [
            ("first round, 20 days ago", price_round(now - timedelta(days=20), priced), BATCH),
            ("the same prices yesterday", price_round(now - timedelta(days=1), priced), BATCH),
            ("a tenth 30% off, one event per batch", price_round(now - timedelta(seconds=5), discounted), 1),
        ]
        for name, events, size in rounds:
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(events), size):
                await _fold(service, conn, events[i : i + size], now)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            # The rest of the wall time is mostly PostgreSQL's: the two take turns.
            print(
                f"{service}, {name}: {len(events) * PRODUCTS / took:,.0f} prices/s ({took:.2f} s), "
                f"the fold's own CPU {cpu / len(events) / PRODUCTS * 1e6:.1f} us a price"
            )
        viewed = await conn.fetchval("SELECT to_regclass('svc.current_prices') IS NOT NULL")
        prices = "svc.current_prices" if viewed else "svc.prices"
        for name, query in CHECKSUMS.items():
            if name.startswith(service):
                checksum = await conn.fetchval(query.replace("{prices}", prices))
                print(f"checksum of what {name} kept: {checksum}")
        await conn.close()
    finally:
        pg.stop()


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("service", choices=("bargains", "catalogue"))
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--price-points", type=int, default=5, help="a product's prices (0: one per store)")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=ServiceSettings.model_fields["gc_threshold"].default,
        help="allocations between collections, as a service process sets it (Python's default: 700)",
    )
    args = parser.parse_args()
    collect_garbage_less_often(args.gc_threshold)
    asyncio.run(run(args.service, args.stores, args.price_points))


if __name__ == "__main__":
    main()
