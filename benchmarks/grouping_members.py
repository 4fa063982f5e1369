"""Benchmark: grouping's fold and cycle when most stores are members, in process, on a PostgreSQL of its own.

Stores in pricing zones (each store charges its zone's prices but for a few of its own) are
priced in two rounds, in batches of 50 events as the service takes them, each round followed
by a grouping cycle: the first round's cycle forms the groups and prunes the members' copies,
the second round's checks every member against its anchor. Prints, per round, the fold's and
the cycle's prices/s, the rows written to and deleted from `latest_prices`, and checksums of
the groups and of every store's answered prices (its own, else its anchor's), so two versions
of the code can be compared (run each with its own PYTHONPATH).

    .venv/bin/python -m benchmarks.grouping_members --stores 400 --zones 8
"""

import argparse
import asyncio
import inspect
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.price_folds import price_round
from grouping import service_layer
from grouping.bootstrap import MIGRATIONS
from grouping.domain.regroup import RegroupMemory
from grouping.repository import PostgresGroupingRepository
from grouping.settings import GroupingSettings
from pricestream.ports import free_port
from pricestream.postgres import EmbeddedPostgres
from servicekit.db import KIT_MIGRATIONS, KIT_MIGRATIONS_TABLE, migrate

BATCH = 50
QUIET = timedelta(seconds=3)
# Every store's answer for every product the chain prices: its own row, else its anchor's.
ANSWERS = """
    SELECT md5(string_agg(concat_ws('|', s.store_id, p.sku, coalesce(own.price_cents, a.price_cents)), ','
                          ORDER BY s.store_id, p.sku))
    FROM svc.stores s
    LEFT JOIN svc.groups g ON g.group_id = s.group_id
    CROSS JOIN (SELECT DISTINCT sku FROM svc.latest_prices) p
    LEFT JOIN svc.latest_prices own ON own.chain = s.chain AND own.store_id = s.store_id AND own.sku = p.sku
    LEFT JOIN svc.latest_prices a
           ON a.chain = s.chain AND a.store_id = g.anchor_store_id AND a.sku = p.sku"""
GROUPS = """SELECT md5(string_agg(s.store_id || '>' || g.anchor_store_id, ',' ORDER BY s.store_id))
            FROM svc.stores s JOIN svc.groups g ON g.group_id = s.group_id"""
ROWS = "SELECT n_tup_ins, n_tup_del FROM pg_stat_user_tables WHERE relname = 'latest_prices'"


class Work:
    """A unit of work over a connection whose transaction the benchmark owns."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.repo = PostgresGroupingRepository(conn)
        self.published: list[object] = []

    def publish(self, events: list[object]) -> None:
        """Keep the events a cycle announces."""
        self.published.extend(events)


def _work(conn: asyncpg.Connection) -> Any:
    """Return a unit of work over the benchmark's transaction (what the service layer takes)."""
    return Work(conn)


async def _rows(conn: asyncpg.Connection) -> tuple[int, int]:
    """Return the rows inserted into and deleted from latest_prices so far (statistics flushed)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    row = await conn.fetchrow(ROWS)
    assert row is not None
    return int(row["n_tup_ins"]), int(row["n_tup_del"])


async def run(stores: int, zones: int, products: int, own_share: float) -> None:
    """Fold two rounds, each followed by a cycle; print rates, rows and checksums."""
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="grouping-members-")), free_port())
    pg.init()
    pg.start()
    try:
        conn = await asyncpg.connect(pg.dsn())
        await conn.execute("CREATE SCHEMA svc; SET search_path TO svc")
        await migrate(conn, schema="svc", directory=KIT_MIGRATIONS, table=KIT_MIGRATIONS_TABLE)
        await migrate(conn, schema="svc", directory=MIGRATIONS)
        policy = GroupingSettings(database_url=pg.dsn()).policy()
        rng = random.Random(7)
        zone_prices = [[rng.randint(99, 2999) for _ in range(products)] for _ in range(zones)]
        shelves = {
            f"s{s:05d}": [
                cents + 1 if rng.random() < own_share else cents for cents in zone_prices[s % zones]
            ]
            for s in range(stores)
        }
        memory = RegroupMemory()
        # Code before members' prices were answered took no policy to fold (a "before" PYTHONPATH).
        takes_policy = "policy" in inspect.signature(service_layer.fold_prices).parameters
        folding: dict[str, Any] = {"policy": policy} if takes_policy else {}
        start = datetime.now(UTC) - timedelta(hours=3)
        for number, name in enumerate(("first round: no groups yet", "second round: most stores members")):
            at = start + timedelta(hours=number)
            events = price_round(at, list(shelves.items()))
            before = await _rows(conn)
            started = time.perf_counter()
            for i in range(0, len(events), BATCH):
                async with conn.transaction():
                    await service_layer.fold_prices(_work(conn), events[i : i + BATCH], now=at, **folding)
            folded = time.perf_counter() - started
            async with conn.transaction():
                report = await service_layer.run_cycle(
                    _work(conn), now=at + QUIET, policy=policy, memory=memory
                )
            cycled = time.perf_counter() - started - folded
            after = await _rows(conn)
            prices = len(events) * products
            print(
                f"{name}: fold {prices / folded:,.0f} prices/s ({folded:.2f} s), cycle {cycled:.2f} s, "
                f"both {prices / (folded + cycled):,.0f} prices/s; latest_prices rows inserted "
                f"{after[0] - before[0]:,}, deleted {after[1] - before[1]:,}; {report.figures()}"
            )
        held = await conn.fetchval("SELECT count(*) FROM svc.latest_prices")
        print(f"rows held {held:,}; checksum of groups {await conn.fetchval(GROUPS)}")
        print(f"checksum of every store's answered prices {await conn.fetchval(ANSWERS)}")
        await conn.close()
    finally:
        pg.stop()


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", type=int, default=400)
    parser.add_argument("--zones", type=int, default=8)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--own-share", type=float, default=0.005, help="a store's prices of its own")
    args = parser.parse_args()
    asyncio.run(run(args.stores, args.zones, args.products, args.own_share))


if __name__ == "__main__":
    main()
