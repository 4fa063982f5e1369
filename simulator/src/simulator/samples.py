"""A small sample world as events: published straight to the bus, it shows every service takes its share.

`pricestream demo --no-scrape` publishes it instead of running the storefront's story.
"""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiokafka import AIOKafkaProducer

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
from servicekit.metrics import processed_counts

PRODUCER = "demo"
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
    for sku, name, brand, size, _ in PRODUCTS:
        payload = ProductObservedPayload(
            chain="coles",
            sku=sku,
            change="new",
            name=name,
            brand=brand,
            size=size,
            category="groceries",
            observed_at=now,
        )
        yield ProductObserved.new(producer=PRODUCER, payload=payload)
    for store in range(1, stores + 1):
        yield _prices(rng, f"{7700 + store}", now)
    members = tuple(f"{7700 + s}" for s in range(2, stores + 1))
    group = StoreGroupChangedPayload(
        chain="coles",
        group_id="coles-demo-1",
        group_version=1,
        anchor_store_id="7701",
        member_store_ids=members,
        reason="formed",
    )
    yield StoreGroupChanged.new(producer=PRODUCER, payload=group)
    rescrape = RescrapeRequestedPayload(
        chain="coles", store_id="7701", reason="manual", group_id=group.group_id
    )
    yield RescrapeRequested.new(producer=PRODUCER, payload=rescrape)


def _prices(rng: random.Random, store_id: str, now: datetime) -> PricesScraped:
    """Return a store's scrape of every product: one in ten 50 cents off, each seen in the last half hour."""
    observations = tuple(
        PriceObservation(
            sku=sku,
            price_cents=price if rng.random() > 0.1 else price - 50,
            was_price_cents=None,
            observed_at=now - timedelta(minutes=rng.randint(0, 30)),
        )
        for sku, _, _, _, price in PRODUCTS
    )
    payload = PricesScrapedPayload(
        chain="coles", store_id=store_id, source="scrape", observations=observations
    )
    return PricesScraped.new(producer=PRODUCER, payload=payload)


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


def publish_samples(
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
