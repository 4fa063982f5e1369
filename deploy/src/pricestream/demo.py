"""The demo: publish sample events and show that every service received its share."""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from contracts import CODEC, SERVICES, Event, consumed_by, topic_for
from contracts.events import (
    PriceObservation,
    PricesScraped,
    ProductObserved,
    RescrapeRequested,
    StoreGroupChanged,
)
from contracts.events.v1 import (
    PricesScrapedPayload,
    ProductObservedPayload,
    RescrapeRequestedPayload,
    StoreGroupChangedPayload,
)

PRODUCTS = [
    ("1001", "Full Cream Milk 2L", "Dairy Farmers", "2L", 450),
    ("1002", "Greek Yoghurt 1kg", "Chobani", "1kg", 890),
    ("1003", "Sourdough Loaf 650g", "Bakers Delight", "650g", 650),
    ("1004", "Free Range Eggs 12 Pack", "Pace Farm", "12 pack", 720),
    ("1005", "Bananas Each", None, "Each", 85),
]


def sample_events(*, stores: int, seed: int = 7) -> Iterator[Event]:
    """Yield a small, deterministic world: products, prices per store, a group, a re-scrape."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    producer = "demo"
    for sku, name, brand, size, _ in PRODUCTS:
        yield ProductObserved.new(
            producer=producer,
            payload=ProductObservedPayload(
                chain="coles",
                sku=sku,
                change="new",
                name=name,
                brand=brand,
                size=size,
                category="groceries",
                observed_at=now,
            ),
        )
    for store in range(1, stores + 1):
        observations = tuple(
            PriceObservation(
                sku=sku,
                price_cents=price if rng.random() > 0.1 else price - 50,
                was_price_cents=None,
                observed_at=now - timedelta(minutes=rng.randint(0, 30)),
            )
            for sku, _, _, _, price in PRODUCTS
        )
        yield PricesScraped.new(
            producer=producer,
            payload=PricesScrapedPayload(
                chain="coles", store_id=f"{7700 + store}", source="scrape", observations=observations
            ),
        )
    members = tuple(f"{7700 + s}" for s in range(2, stores + 1))
    yield StoreGroupChanged.new(
        producer=producer,
        payload=StoreGroupChangedPayload(
            chain="coles",
            group_id="coles-demo-1",
            group_version=1,
            anchor_store_id="7701",
            member_store_ids=members,
            reason="formed",
        ),
    )
    yield RescrapeRequested.new(
        producer=producer,
        payload=RescrapeRequestedPayload(
            chain="coles", store_id="7701", reason="manual", group_id="coles-demo-1"
        ),
    )


async def publish(bootstrap_servers: str, events: list[Event]) -> Counter[str]:
    """Publish events with a plain aiokafka producer; return how many went to each topic."""
    sent: Counter[str] = Counter()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=f"demo-{uuid4().hex[:6]}")
    await producer.start()
    try:
        for event in events:
            record = CODEC.encode(event)
            name = topic_for(type(event)).name
            await producer.send(name, record.value, key=record.key, headers=list(record.headers))
            sent[name] += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def processed_counts(url: str) -> Counter[str]:
    """Read a service's processed-message counters per topic from its /metrics."""
    try:
        return processed_counts_from_text(httpx.get(f"{url}/metrics", timeout=3.0).text)
    except httpx.HTTPError:
        return Counter()


def processed_counts_from_text(text: str) -> Counter[str]:
    """Sum the processed-message counters per topic in a Prometheus text exposition."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "pricestream_messages_processed":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["topic"]] += int(sample.value)
    return counts


def run_demo(
    bootstrap_servers: str,
    service_urls: dict[str, str],
    *,
    stores: int = 20,
    timeout_s: float = 60.0,
) -> list[tuple[str, str, int, int]]:
    """Publish the sample world and wait until each service processed what it subscribes to.

    Returns rows of (service, topic, published, processed by the service) for the report.
    """
    before = {name: processed_counts(url) for name, url in service_urls.items()}
    sent = asyncio.run(publish(bootstrap_servers, list(sample_events(stores=stores))))
    deadline = time.monotonic() + timeout_s
    while True:
        rows = []
        for name in SERVICES:
            now = processed_counts(service_urls[name])
            for spec in consumed_by(name):
                rows.append((name, spec.name, sent[spec.name], now[spec.name] - before[name][spec.name]))
        if all(done >= published for _, _, published, done in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def example_substitutions(storefront_url: str, substitutions_url: str, *, timeout_s: float = 60.0) -> Table:
    """Show, for a product of each true equivalence level, the best substitute the service found per level."""
    equivalences = httpx.get(f"{storefront_url}/_truth/equivalences", timeout=10).json()["equivalences"]
    picks: dict[str, dict[str, str]] = {}
    for equivalence in equivalences:
        picks.setdefault(equivalence["level"], equivalence)
    table = Table(title="example substitutions (truth: the storefront's equivalences)")
    for column in ("product", "level", "substitute", "at", "score", "reason", "truth"):
        table.add_column(column, overflow="fold")
    for level, pick in sorted(picks.items()):
        url = f"{substitutions_url}/v1/products/{pick['chain_a']}/{pick['sku_a']}/substitutions"
        deadline = time.monotonic() + timeout_s
        response = httpx.get(url, timeout=10)
        while response.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.5)
            response = httpx.get(url, timeout=10)
        if response.status_code != 200:
            table.add_row(f"{pick['chain_a']}/{pick['sku_a']}", "-", "not computed yet", "", "", "", level)
            continue
        found = response.json()
        best: dict[str, dict[str, object]] = {}
        for row in found["substitutes"]:
            if row["chain"] == pick["chain_b"] and row["sku"] == pick["sku_b"]:
                best[str(row["level"])] = row  # the true pair is the one worth showing
            else:
                best.setdefault(str(row["level"]), row)
        for shown, (at_level, row) in enumerate(sorted(best.items())):
            is_truth = row["chain"] == pick["chain_b"] and row["sku"] == pick["sku_b"]
            table.add_row(
                str(found["name"]) if shown == 0 else "",
                at_level,
                str(row["name"]),
                str(row["chain"]),
                f"{row['score']:.2f}",
                str(row["reason"]),
                f"{level} pair" if is_truth else "",
            )
    return table
