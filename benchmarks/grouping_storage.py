"""Benchmark: grouping's latest-price write, the `unnest` upsert against COPY into staging and one merge.

On an embedded PostgreSQL of its own, three schemas hold grouping's tables:
- `unnest`: the previous write (one array per column, `INSERT ... SELECT FROM unnest ... ON
  CONFLICT`), with the anchors found by a query first, on the tables of migrations 1-3;
- `staged_ff100`: the repository's write (COPY into the unlogged `incoming_prices`, one
  statement counting anchors' changes, one merge) with latest_prices at fillfactor 100;
- `staged`: the same with every migration, so latest_prices keeps room for in-page updates.
Each writes the same batches of prices (a round of new rows, then a round of every row
observed again with a tenth of the prices changed), the three interleaved batch by batch,
and the rows per second of each round are printed.

    .venv/bin/python -m benchmarks.grouping_storage --stores 200 --products 500 --batch 50
"""

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from contracts.events import PriceObservation
from contracts.events.v1 import PricesScrapedPayload
from grouping.bootstrap import MIGRATIONS
from grouping.repository import PostgresGroupingRepository, newest_rows
from grouping.settings import GroupingSettings
from pricestream.ports import free_port
from pricestream.postgres import EmbeddedPostgres
from servicekit.db import load_migrations

# The service's default rules: which stored prices count as fresh, how far an anchor may lag.
POLICY = GroupingSettings(database_url="postgresql://unused/").policy()

Write = Callable[[asyncpg.Connection, Sequence[PricesScrapedPayload]], Awaitable[None]]


async def unnest_upsert(conn: asyncpg.Connection, batches: Sequence[PricesScrapedPayload]) -> None:
    """Write prices as grouping did before staging: the same coalescing and anchor count, an unnest upsert."""
    rows = newest_rows(batches)
    # Only the write of the latest prices differs between the ways compared.
    stores = sorted({(row.chain, row.store_id) for row in rows})
    found = await conn.fetch(
        """SELECT g.chain, g.anchor_store_id FROM unnest($1::text[], $2::text[]) AS s(chain, store_id)
           JOIN groups g ON g.chain = s.chain AND g.anchor_store_id = s.store_id""",
        [chain for chain, _ in stores],
        [store_id for _, store_id in stores],
    )
    anchors = {(r["chain"], r["anchor_store_id"]) for r in found}
    await PostgresGroupingRepository(conn)._count_anchor_changes(rows, anchors)
    await conn.execute(
        """INSERT INTO latest_prices AS p
               (chain, store_id, sku, price_cents, was_price_cents, available, observed_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::integer[],
                                $6::boolean[], $7::timestamptz[])
           ON CONFLICT (chain, store_id, sku) DO UPDATE
           SET price_cents = EXCLUDED.price_cents, was_price_cents = EXCLUDED.was_price_cents,
               available = EXCLUDED.available, observed_at = EXCLUDED.observed_at
           WHERE EXCLUDED.observed_at > p.observed_at""",
        *(list(column) for column in zip(*rows, strict=True)),
    )


async def staged_merge(conn: asyncpg.Connection, batches: Sequence[PricesScrapedPayload]) -> None:
    """Write prices as the grouping repository does now."""
    await PostgresGroupingRepository(conn).upsert_prices(
        batches=batches, fresh_since=datetime.now(UTC) - POLICY.freshness, anchor_lag=POLICY.anchor_lag
    )


WAYS: dict[str, tuple[int, Write]] = {
    # schema: (migrations applied, the write)
    "unnest": (3, unnest_upsert),
    "staged_ff100": (4, staged_merge),
    "staged": (4, staged_merge),
}


def rounds(stores: int, products: int, seed: int) -> list[list[PricesScrapedPayload]]:
    """Return two rounds of one page per store: new prices, then each seen again, a tenth changed."""
    rng = random.Random(seed)
    base = [rng.randint(99, 2999) for _ in range(products)]
    now = datetime.now(UTC) - timedelta(hours=1)
    first: list[PricesScrapedPayload] = []
    second: list[PricesScrapedPayload] = []
    for store in range(stores):
        for out, at, change in ((first, now - timedelta(days=1), 0.0), (second, now, 0.1)):
            observations = tuple(
                PriceObservation(
                    sku=f"p{i}", price_cents=price + (7 if rng.random() < change else 0), observed_at=at
                )
                for i, price in enumerate(base)
            )
            out.append(
                PricesScrapedPayload(
                    chain="bench", store_id=f"s{store:05d}", source="import", observations=observations
                )
            )
    return [first, second]


async def prepare(conn: asyncpg.Connection, schema: str, migrations: int, stores: int) -> None:
    """Create a schema with grouping's first migrations, its stores, and every tenth store an anchor."""
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.execute(f"SET search_path TO {schema}")
    for migration in load_migrations(MIGRATIONS)[:migrations]:
        await conn.execute(migration.sql)
    if schema.endswith("_ff100"):
        await conn.execute("ALTER TABLE latest_prices RESET (fillfactor)")
    await conn.execute(
        """INSERT INTO stores (chain, store_id, observed, last_received_at)
           SELECT 'bench', format('s%s', lpad(n::text, 5, '0')), 0, now()
           FROM generate_series(0, $1 - 1) n""",
        stores,
    )
    await conn.execute(
        """INSERT INTO groups (group_id, chain, anchor_store_id)
           SELECT format('g%s', n), 'bench', format('s%s', lpad(n::text, 5, '0'))
           FROM generate_series(0, $1 - 1, 10) n""",
        stores,
    )


async def measure(dsn: str, stores: int, products: int, batch: int) -> dict[str, dict[str, int]]:
    """Write both rounds in batches, the ways interleaved batch by batch; return rows/s per way and round."""
    conn = await asyncpg.connect(dsn)
    try:
        for schema, (migrations, _) in WAYS.items():
            await prepare(conn, schema, migrations, stores)
        seconds = {schema: [0.0, 0.0] for schema in WAYS}
        for number, pages in enumerate(rounds(stores, products, seed=3)):
            for start in range(0, len(pages), batch):
                part = pages[start : start + batch]
                for schema, (_, write) in WAYS.items():
                    await conn.execute(f"SET search_path TO {schema}")
                    started = time.perf_counter()
                    async with conn.transaction():
                        await write(conn, part)
                    seconds[schema][number] += time.perf_counter() - started
        rows = stores * products
        return {
            schema: {"new_rows_per_s": round(rows / spent[0]), "updated_rows_per_s": round(rows / spent[1])}
            for schema, spent in seconds.items()
        }
    finally:
        await conn.close()


def main() -> None:
    """Start a PostgreSQL of its own, measure, print the figures as JSON, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50, help="pages per transaction (grouping's max batch)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="grouping-storage-"))
    postgres = EmbeddedPostgres(home, free_port())
    try:
        postgres.init()
        postgres.start()
        figures = asyncio.run(measure(postgres.dsn(), args.stores, args.products, args.batch))
    finally:
        postgres.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({"stores": args.stores, "products": args.products, "batch": args.batch, **figures}))


if __name__ == "__main__":
    main()
