"""Benchmark: observations per second from storefront to topic, beside the raw broker rate.

Brings up a whole local stack on free ports with a large simulated world, measures the
raw produce rate of the broker with messages of a PricesScraped event's size, then runs
a full scrape and times it until every observation was read back from the topic.

    .venv/bin/python -m benchmarks.scrape_throughput --stores-per-chain 100 --products-per-chain 480
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console

from contracts import CODEC, topic
from contracts.schema import EXAMPLE_DIR
from pricestream.stack import Stack
from testsupport import report, stack_config

PRICES = topic("prices.scraped.v1")


def page_event_size(*, observations: int) -> int:
    """Return the size of a PricesScraped event carrying one page of observations."""
    doc = json.loads((EXAMPLE_DIR / "PricesScraped.v1.json").read_text())
    doc["payload"]["observations"] = doc["payload"]["observations"][:1] * observations
    return len(json.dumps(doc, separators=(",", ":")))


async def raw_produce_rate(bootstrap: str, *, messages: int, size: int) -> float:
    """Produce `messages` messages of `size` bytes with aiokafka; return messages per second."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic("bench.raw", PRICES.partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    value = b"x" * size
    started = time.perf_counter()
    futures = [await producer.send("bench.raw", value, key=str(i % 500).encode()) for i in range(messages)]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return messages / elapsed


async def read_observations(bootstrap: str, run_id: str, expected: int, timeout: float) -> tuple[int, float]:
    """Consume the run's events until `expected` observations arrived; return count and finish time."""
    consumer = AIOKafkaConsumer(PRICES.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    count, last = 0, time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        while count < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    event = CODEC.decode(record.value, dict(record.headers))
                    payload = getattr(event, "payload", None)
                    if payload is not None and payload.run_id == run_id:
                        count += payload.count()
                        last = time.perf_counter()
    finally:
        await consumer.stop()
    return count, last


def main() -> None:
    """Run the benchmark and print (and save) its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores-per-chain", type=int, default=100)
    parser.add_argument("--products-per-chain", type=int, default=480)
    parser.add_argument("--raw-messages", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("bench-results/scrape_throughput.json"))
    args = parser.parse_args()
    console = Console()

    with tempfile.TemporaryDirectory() as tmp:
        config = stack_config(Path(tmp) / ".pricestream").model_copy(
            update={
                "world_stores_per_chain": args.stores_per_chain,
                "world_products_per_chain": args.products_per_chain,
                "shop_rate_limit_rps": 0,
                "shop_error_rate": 0,
            }
        )
        stack = Stack(config)
        try:
            with console.status("starting a local stack with a large world..."):
                stack.up(report=lambda line: None)
            event_size = page_event_size(observations=24)
            raw = asyncio.run(
                raw_produce_rate(config.bootstrap_servers, messages=args.raw_messages, size=event_size)
            )

            scraper = stack.service_process("scraper").url
            started = time.perf_counter()
            run_id = httpx.post(f"{scraper}/v1/runs", json={"scope": "all", "day": 1}, timeout=120).json()[
                "run_id"
            ]
            with console.status(f"scraping ({run_id})..."):
                while (run := httpx.get(f"{scraper}/v1/runs/{run_id}").json())["status"] == "running":
                    time.sleep(0.5)
                staged_at = time.perf_counter()
                count, last = asyncio.run(
                    read_observations(config.bootstrap_servers, run_id, run["observations"], timeout=300)
                )
        finally:
            stack.down(report=lambda line: None)

    seconds = last - started
    per_event = run["observations"] / max(run["pages_done"], 1)
    figures = {
        "stores": run["stores"],
        "pages": run["pages_done"],
        "observations": run["observations"],
        "observations_read_back": count,
        "seconds_to_stage": round(staged_at - started, 2),
        "seconds_to_topic": round(seconds, 2),
        "observations_per_s": round(count / seconds),
        "pages_per_s": round(run["pages_done"] / seconds, 1),
        "raw_produce_messages_per_s": round(raw),
        "raw_produce_observations_per_s_equivalent": round(raw * per_event),
        "event_size_bytes": event_size,
    }
    report(console, "scrape throughput (storefront -> scraper -> outbox -> topic)", figures, args.out)


if __name__ == "__main__":
    main()
