"""Benchmark: the grouping service's ingest rate and regroup through the real stack.

Publishes zone-structured PricesScraped events (pages of 1,000 observations) straight to
the topic, times how fast the grouping service folds them into its latest-price
projection, then how long its cycle takes to form the groups, and prints the share of
store pairs it compared. The pure algorithm at 3,000 x 20,000 is `benchmarks.grouping_algorithm`.

    .venv/bin/python -m benchmarks.grouping_ingest --stores 300 --products 20000 --zones 12
"""

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from rich.console import Console

from contracts import topic
from pricestream.stack import Stack
from servicekit.local_http import local_http
from servicekit.metrics import processed_counts
from testsupport import report, stack_config

PRICES = topic("prices.scraped.v1")
PAGE = 1_000


def events(stores: int, products: int, zones: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Build (key, value) pairs of valid PricesScraped JSON, fast (no model objects)."""
    rng = random.Random(seed)
    base = [rng.randint(99, 2999) for _ in range(products)]
    zone_factor = [1 + 0.013 * z for z in range(zones)]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for store in range(stores):
        zone = store % zones
        prices = [int(p * zone_factor[zone]) for p in base]
        for _ in range(products // 500):  # a few store exceptions
            prices[rng.randrange(products)] += 7
        for start in range(0, products, PAGE):
            observations = ",".join(
                f'{{"sku":"p{i}","price_cents":{prices[i]},"observed_at":"{now}"}}'
                for i in range(start, min(start + PAGE, products))
            )
            event_id = str(uuid.uuid4())
            value = (
                f'{{"event_id":"{event_id}","event_type":"PricesScraped","schema_version":1,'
                f'"occurred_at":"{now}","producer":"bench","correlation_id":"{event_id}",'
                f'"payload":{{"chain":"bench","store_id":"s{store:05d}","source":"import",'
                f'"observations":[{observations}]}}}}'
            )
            out.append((f"bench:s{store:05d}".encode(), value.encode()))
    return out


async def publish(bootstrap: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce the records; return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    await producer.start()
    headers = [("event_type", b"PricesScraped"), ("schema_version", b"1")]
    started = time.perf_counter()
    futures = [await producer.send(PRICES.name, value, key=key, headers=headers) for key, value in records]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return elapsed


def main() -> None:
    """Run the benchmark and print (and save) its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--zones", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("bench-results/grouping_ingest.json"))
    args = parser.parse_args()
    console = Console()
    records = events(args.stores, args.products, args.zones, seed=1)
    observations = args.stores * args.products

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(stack_config(Path(tmp) / ".pricestream"))
        try:
            with console.status("starting a local stack..."):
                stack.up(report=lambda line: None)
            grouping = stack.service_process("grouping").url
            before = processed_counts(grouping)[PRICES.name]
            started = time.perf_counter()
            produce_s = asyncio.run(publish(stack.config.bootstrap_servers, records))
            with console.status(f"grouping ingests {observations:,} observations..."):
                while processed_counts(grouping)[PRICES.name] - before < len(records):
                    time.sleep(0.5)
            ingested = time.perf_counter()
            with console.status("waiting for the groups..."):
                while local_http().get(f"{grouping}/v1/stats").json()["groups"] < args.zones:
                    time.sleep(0.2)
                while True:
                    stats = local_http().get(f"{grouping}/v1/stats").json()
                    time.sleep(1.0)
                    if local_http().get(f"{grouping}/v1/stats").json() == stats:
                        break
            grouped = time.perf_counter()
            log = (stack.config.home / "logs" / "grouping.log").read_text()
        finally:
            stack.down(report=lambda line: None)

    cycles = [json.loads(line) for line in log.splitlines() if '"groups updated"' in line]
    compared = sum(c["pairs_compared"] for c in cycles)
    possible = max((c["pairs_possible"] for c in cycles), default=0)
    figures = {
        "stores": args.stores,
        "products": args.products,
        "observations": observations,
        "events": len(records),
        "produce_seconds": round(produce_s, 2),
        "raw_produce_observations_per_s": round(observations / produce_s),
        "ingest_seconds": round(ingested - started, 2),
        "ingest_observations_per_s": round(observations / (ingested - started)),
        "groups": stats["groups"],
        "seconds_from_ingested_to_grouped": round(grouped - ingested, 2),
        "pairs_compared": compared,
        "pairs_possible": possible,
        "compared_share": round(compared / possible, 4) if possible else None,
        "prices_held": stats["prices_held"],
        "compression_ratio": stats["compression_ratio"],
    }
    report(console, "grouping: ingest and regroup through the stack", figures, args.out)


if __name__ == "__main__":
    main()
