"""Benchmark: how fast any three price consumers go on this machine, a ceiling for `pricestream bench`.

`pricestream bench` runs grouping, bargains and the catalogue, three consumer groups that each
take every price and keep state per price. This measures what three minimal consumers of the
same events reach on the same broker and PostgreSQL, each in a process of its own, in three
shapes of increasing work:

- `decode`: consume and decode each event with the contracts codec, nothing kept;
- `copy`: that, plus COPY each batch's prices (store, product, price, time) into an unlogged
  table: the cheapest way to keep a row per price;
- `upsert`: that, plus one set-based merge of the batch into a table keyed by store and
  product (the least a projection of current prices costs: one row updated per price).

The same prices as `pricestream bench`'s throughput phase (two rounds per store, 500 prices
an event) are published once; each shape's three consumer groups read them from the start.
It prints prices/s per shape (the slowest of the three consumers) next to the COPY rate of the
same run, so the ratio is comparable with the bench's `pipeline_vs_raw_copy_rows`.

    .venv/bin/python -m benchmarks.pipeline_ceiling --stores 700
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer

from contracts import CODEC
from contracts.events import PricesScraped
from pricestream.bench import (
    HEADERS,
    PRICES,
    BenchPlan,
    iso_utc,
    price_event,
    produce,
    scratch_topic,
    terminated_as_interrupted,
)
from pricestream.kafka import TansuBroker
from pricestream.ports import free_port
from pricestream.postgres import EmbeddedPostgres

SHAPES = ("decode", "copy", "upsert")
CONSUMERS = 3
BATCH = 50  # events per batch, as the services take them


def _records(stores: int, products: int) -> list[tuple[bytes, bytes]]:
    """Return two rounds of one event per store, shaped like the bench's throughput phase."""
    plan = BenchPlan(stores=stores, products=products)
    now = datetime.now(UTC)
    zones = [
        {f"p{i}": 99 + (zone * 7 + i * 13) % 2900 for i in range(plan.products)} for zone in range(plan.zones)
    ]
    return [
        price_event("bench", f"s{store:05d}", zones[store % plan.zones], at)
        for at in (iso_utc(now - timedelta(days=20)), iso_utc(now - timedelta(days=1)))
        for store in range(stores)
    ]


async def consume(bootstrap: str, name: str, group: str, dsn: str, shape: str, events: int) -> None:
    """Consume `events` events of a topic in one consumer group, doing a shape's work per batch."""
    conn = await asyncpg.connect(dsn)
    table = group.replace(".", "_").replace("-", "_")
    await conn.execute(
        f"""CREATE UNLOGGED TABLE IF NOT EXISTS {table}_staged
                (store_id text, sku text, price_cents integer, observed_at timestamptz);
            CREATE TABLE IF NOT EXISTS {table}_latest
                (store_id text, sku text, price_cents integer, observed_at timestamptz,
                 PRIMARY KEY (store_id, sku))"""
    )
    consumer = AIOKafkaConsumer(
        name,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            records = [record for part in batches.values() for record in part]
            if not records:
                continue
            first = first or time.time()
            decoded = [CODEC.decode(r.value, dict(r.headers)) for r in records]
            rows = [
                (e.payload.store_id, o.sku, o.price_cents, o.observed_at)
                for e in decoded
                if isinstance(e, PricesScraped)
                for o in e.payload.sightings()
            ]
            if shape != "decode":
                async with conn.transaction():
                    await conn.copy_records_to_table(f"{table}_staged", records=rows)
                    if shape == "upsert":
                        # The newest sighting per key wins; DELETE ... RETURNING empties the staging.
                        await conn.execute(
                            f"""WITH staged AS (DELETE FROM {table}_staged RETURNING *)
                                INSERT INTO {table}_latest
                                SELECT DISTINCT ON (store_id, sku) * FROM staged
                                ORDER BY store_id, sku, observed_at DESC
                                ON CONFLICT (store_id, sku) DO UPDATE
                                SET price_cents = EXCLUDED.price_cents, observed_at = EXCLUDED.observed_at"""
                        )
            await consumer.commit()
            seen += len(records)
    finally:
        done = time.time()
        await consumer.stop()
        await conn.close()
    # Timed from the first record on: the processes' start and the group's join are not the work.
    print(json.dumps([first, done]), flush=True)


async def _shape(bootstrap: str, name: str, dsn: str, shape: str, events: int, consumers: int) -> float:
    """Run three consumers of a shape in processes of their own; return the longest one's seconds at work."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.pipeline_ceiling",
            "--consumer",
            json.dumps([bootstrap, name, f"ceiling-{shape}-{n}", dsn, shape, events]),
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(consumers)
    ]
    spans: list[tuple[float, float]] = []
    for process in processes:
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a {shape} consumer failed")
        first, done = json.loads(out.decode().strip().splitlines()[-1])
        spans.append((float(first), float(done)))
    return max(done - first for first, done in spans)


async def run(
    bootstrap: str, dsn: str, stores: int, products: int, shapes: list[str], consumers: int
) -> None:
    """Publish the bench's prices once, then time each shape's three consumers."""
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    rows = [(f"s{i % 2000:05d}", f"p{i % 500}", 100 + i % 2000, now) for i in range(1_000_000)]
    await conn.execute("CREATE TABLE raw_copy (store_id text, sku text, price_cents int, at timestamptz)")
    started = time.perf_counter()
    await conn.copy_records_to_table("raw_copy", records=rows)
    copy_rate = len(rows) / (time.perf_counter() - started)
    await conn.execute("DROP TABLE raw_copy")
    await conn.close()
    records = _records(stores, products)
    name = await scratch_topic(bootstrap, "ceiling.prices")
    await produce(bootstrap, name, records, headers=HEADERS)
    prices = len(records) * products
    print(
        f"COPY {copy_rate:,.0f} rows/s; {prices:,} prices, {len(records):,} events, "
        f"{PRICES.partitions} partitions",
        flush=True,
    )
    for shape in shapes:
        seconds = await _shape(bootstrap, name, dsn, shape, len(records), consumers)
        rate = prices / seconds
        print(
            f"{shape:>7}: {consumers} consumers each took every price in {seconds:.1f} s: "
            f"{rate:,.0f} prices/s, {rate / copy_rate:.1%} of COPY",
            flush=True,
        )


def main() -> None:
    """Parse the options and run the benchmark (or one consumer of it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", type=int, default=700, help="stores, one event each per round")
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, of " + ", ".join(SHAPES))
    parser.add_argument("--consumers", type=int, default=CONSUMERS, help="consumer groups, each a process")
    parser.add_argument("--consumer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        asyncio.run(consume(*json.loads(args.consumer)))
        return
    home = Path(tempfile.mkdtemp(prefix="pipeline-ceiling-"))
    broker = TansuBroker(home / "broker", free_port())
    pg = EmbeddedPostgres(home / "pg", free_port())
    with terminated_as_interrupted():
        _measure(broker, pg, args)


def _measure(broker: TansuBroker, pg: EmbeddedPostgres, args: argparse.Namespace) -> None:
    """Start the broker and PostgreSQL, run the shapes, stop both whatever happens."""
    broker.start()
    try:
        pg.init()
        pg.start()
        try:
            shapes = args.shapes.split(",")
            asyncio.run(
                run(broker.bootstrap_servers, pg.dsn(), args.stores, args.products, shapes, args.consumers)
            )
        finally:
            pg.stop()
    finally:
        broker.process.stop()


if __name__ == "__main__":
    main()
