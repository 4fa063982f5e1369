"""Fault tests on a stack of their own: kill -9, PostgreSQL and broker outages and restarts, a burst.

Each test publishes events with a plain Kafka producer, breaks something in the middle of
the stream, and compares the services' final state with a reference computed from every
event published: each event's effect present exactly once, nothing dead-lettered.
"""

import asyncio
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bargains.domain.history import Segment, fold
from contracts import CODEC, SERVICES, TOPICS, Event, topic, topic_for
from contracts.events import PricesScraped, ProductObserved
from contracts.events.v1 import PriceObservation, PricesScrapedPayload, ProductObservedPayload
from pricestream.kafka import consumer_lag, describe_topics, ensure_topics
from pricestream.processes import port_in_use
from pricestream.stack import Stack
from servicekit.metrics import processed_counts
from testsupport import running_stack, wait_until

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")
OBSERVED = topic("products.observed.v1")

PriceKey = tuple[str, str, str]
"""(chain, store_id, sku)."""

ProductKey = tuple[str, str]
"""(chain, sku)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: these tests kill services and restart PostgreSQL and the broker.

    The broker keeps its messages in memory only: a restart empties every topic and forgets the
    consumer groups' offsets, which would pull the ground from under tests sharing the session's stack.
    """
    with running_stack(tmp_path_factory.mktemp("faults") / ".pricestream", "faults stack") as stack:
        yield stack


# --- events and the references computed from them ---------------------------------------


@dataclass
class PriceReference:
    """What grouping and bargains must hold after every published PricesScraped."""

    events: list[PricesScraped] = field(default_factory=list)
    latest: dict[PriceKey, tuple[int, int | None, bool, datetime]] = field(default_factory=dict)
    observed: dict[tuple[str, str], int] = field(default_factory=dict)
    last_observed_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    history: dict[PriceKey, tuple[Segment, ...]] = field(default_factory=dict)

    @property
    def observations(self) -> int:
        """Return the observations published."""
        return sum(self.observed.values())

    def add(self, event: PricesScraped) -> None:
        """Fold one event into the reference, in publish order (one store's events keep it)."""
        self.events.append(event)
        p = event.payload
        store = (p.chain, p.store_id)
        self.observed[store] = self.observed.get(store, 0) + p.count()
        newest = p.newest()
        self.last_observed_at[store] = max(self.last_observed_at.get(store, newest), newest)
        for o in p.sightings():
            key = (p.chain, p.store_id, o.sku)
            # Grouping keeps the newest observation whatever the order it arrives in.
            held = self.latest.get(key)
            if held is None or o.observed_at > held[3]:
                self.latest[key] = (o.price_cents, o.was_price_cents, o.available, o.observed_at)
            self.history[key] = fold(
                self.history.get(key, ()),
                price_cents=o.price_cents,
                was_price_cents=o.was_price_cents,
                observed_at=o.observed_at,
            )


def price_events(
    chain: str,
    *,
    stores: int,
    skus: int,
    rounds: int,
    rng: random.Random,
    per_event: int | None = None,
    shuffle_rounds: bool = True,
) -> list[PricesScraped]:
    """Make `rounds` scrapes of every store, each price drawn at random so no two stores match.

    Random prices keep grouping from forming groups (and pruning rows), so its latest-price
    table must hold every (store, product) published. Rounds of a store arrive in a shuffled
    order: an older round arriving late must not replace a newer price.
    """
    now = datetime.now(UTC) - timedelta(minutes=10)
    per_event = per_event or skus
    events: list[PricesScraped] = []
    for store in range(stores):
        order = list(range(rounds))
        if shuffle_rounds:
            rng.shuffle(order)
        for r in order:
            at = now - timedelta(hours=rounds - r, microseconds=rng.randrange(1_000_000))
            rows = [
                PriceObservation(
                    sku=f"p{sku:05d}",
                    price_cents=rng.randint(100, 99_999),
                    was_price_cents=None if rng.random() < 0.9 else 120_000,
                    available=rng.random() < 0.95,
                    observed_at=at,
                )
                for sku in range(skus)
            ]
            for start in range(0, skus, per_event):
                payload = PricesScrapedPayload(
                    chain=chain,
                    store_id=f"s{store:04d}",
                    source="import",
                    observations=tuple(rows[start : start + per_event]),
                )
                events.append(PricesScraped.new(producer="faults", payload=payload))
    return events


def reference_of(events: Sequence[PricesScraped]) -> PriceReference:
    """Compute the reference of events in publish order."""
    reference = PriceReference()
    for event in events:
        reference.add(event)
    return reference


BRANDS = (
    "Farmhouse",
    "Golden Vale",
    "Riverside",
    "Sunny Bay",
    "Hillcrest",
    "Oakwood",
    "Bellbird",
    "Kookaburra",
)
ITEMS = (
    ("Full Cream Milk", ("1L", "2L", "3L"), "dairy"),
    ("Greek Yoghurt", ("500g", "1kg"), "dairy"),
    ("Cheddar Cheese Block", ("250g", "500g", "1kg"), "dairy"),
    ("Sourdough Bread", ("650g", "750g"), "bakery"),
    ("Free Range Eggs", ("6 pack", "12 pack"), "eggs"),
    ("Orange Juice", ("1L", "2L"), "drinks"),
    ("Rolled Oats", ("750g", "1kg"), "pantry"),
    ("Basmati Rice", ("1kg", "5kg"), "pantry"),
    ("Smooth Peanut Butter", ("375g", "1kg"), "pantry"),
    ("Dark Chocolate 70%", ("100g", "200g"), "confectionery"),
    ("Dishwashing Liquid Lemon", ("500mL", "1L"), "household"),
    ("Toilet Paper 3 Ply", ("12 pack", "24 pack"), "household"),
)


def product_events(
    chains: Sequence[str], *, count: int, rng: random.Random, renamed: int, stale: int, barcodes_from: int
) -> list[ProductObserved]:
    """Make `count` products over `chains` (same product at several chains shares a barcode).

    `renamed` of them are described again later with a new name; `stale` get an older,
    different description published last, which must change nothing. Barcodes start at
    `barcodes_from`, so that each test's products are identical only among themselves.
    """
    now = datetime.now(UTC) - timedelta(minutes=10)
    firsts: list[ProductObservedPayload] = []
    for n in range(count):
        brand = BRANDS[n % len(BRANDS)]
        name, sizes, category = ITEMS[(n // len(BRANDS)) % len(ITEMS)]
        size = sizes[(n // (len(BRANDS) * len(ITEMS))) % len(sizes)]
        chain = chains[n % len(chains)]
        firsts.append(
            ProductObservedPayload(
                chain=chain,
                sku=f"q{n:05d}",
                change="new",
                name=f"{brand} {name} {size}",
                brand=brand,
                size=size,
                category=category,
                barcode=f"93{barcodes_from + n // len(chains):011d}",
                observed_at=now - timedelta(hours=2, seconds=n),
            )
        )
    later = [
        p.model_copy(update={"change": "changed", "name": f"{p.name} Value Pack", "observed_at": now})
        for p in rng.sample(firsts, renamed)
    ]
    older = [
        p.model_copy(update={"name": f"{p.name} Old Label", "observed_at": p.observed_at - timedelta(days=1)})
        for p in rng.sample(firsts, stale)
    ]
    return [ProductObserved.new(producer="faults", payload=p) for p in (*firsts, *later, *older)]


def products_reference(
    events: Sequence[ProductObserved],
) -> dict[ProductKey, tuple[str, str | None, datetime]]:
    """Return each product's newest description: (name, barcode, observed_at)."""
    newest: dict[ProductKey, tuple[str, str | None, datetime]] = {}
    for event in events:
        p = event.payload
        held = newest.get((p.chain, p.sku))
        if held is None or p.observed_at > held[2]:
            newest[(p.chain, p.sku)] = (p.name, p.barcode, p.observed_at)
    return newest


# --- the broker ---------------------------------------------------------------------------


async def _send(bootstrap: str, events: Sequence[Event]) -> float:
    """Publish events as fast as a plain producer goes; return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = []
        for event in events:
            record = CODEC.encode(event)
            futures.append(
                await producer.send(
                    topic_for(type(event)).name, record.value, key=record.key, headers=list(record.headers)
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def send(stack: Stack, events: Sequence[Event]) -> float:
    """Publish events and wait for the broker to acknowledge them all; return seconds taken."""
    return asyncio.run(_send(stack.config.bootstrap_servers, events))


def lags(stack: Stack, groups: dict[str, list[str]]) -> dict[str, int]:
    """Return each consumer group's lag over the given topics."""
    found = asyncio.run(consumer_lag(stack.config.bootstrap_servers, groups))
    total = dict.fromkeys(groups, 0)
    for lag in found:
        total[lag.group] += lag.lag
    return total


def drained(stack: Stack, groups: dict[str, list[str]]) -> Callable[[], bool]:
    """Return a predicate: every group has committed every message of its topics."""

    def check() -> bool:
        try:
            return all(lag == 0 for lag in lags(stack, groups).values())
        except Exception:
            # The broker may be coming back: not drained yet.
            return False

    return check


def dead_letters(stack: Stack) -> dict[str, int]:
    """Return how many messages each DLQ holds."""
    infos = asyncio.run(describe_topics(stack.config.bootstrap_servers, [spec.dlq for spec in TOPICS]))
    return {info.name: info.messages for info in infos}


def processed(stack: Stack, service: str, name: str) -> int:
    """Return the messages of a topic a service's current process has handled (its /metrics)."""
    return processed_counts(stack.service_process(service).url)[name]


def transient_retries(stack: Stack) -> int:
    """Return how often the services' current processes retried a handler for an unavailable dependency."""
    total = 0
    for name in SERVICES:
        text = httpx.get(f"{stack.service_process(name).url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            if family.name == "pricestream_messages_failed":
                total += sum(
                    int(sample.value)
                    for sample in family.samples
                    if sample.name.endswith("_total") and sample.labels.get("reason") == "transient"
                )
    return total


def all_ready(stack: Stack) -> bool:
    """Tell whether every service answers ready."""
    for name in SERVICES:
        try:
            if httpx.get(f"{stack.service_process(name).url}/health/ready", timeout=5).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


def kill_9(stack: Stack, name: str) -> None:
    """Kill a service with SIGKILL and wait until it is gone."""
    process = stack.services[name]
    pid = process.pid
    assert pid is not None, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not process.running(), timeout=30)
    # A dying multi-threaded process shows as a zombie while its other threads still hold
    # its sockets (the model's threads take a moment): wait for the HTTP port to be let go.
    port = stack.config.service_port(name)
    assert wait_until(lambda: not port_in_use(port), timeout=30), f"{name} still holds port {port}"


def kill_mid_stream(stack: Stack, name: str, topic: str, events: list[Any]) -> tuple[int, int, float]:
    """Publish half, kill -9 the service while it works, publish the rest, restart it, wait for no lag.

    Return how many it had handled at the kill, its lag while down, and seconds to drain after.
    """
    half = len(events) // 2
    groups = {name: [topic]}
    send(stack, events[:half])
    # Kill it while it works through the first half: some handled, some not yet committed.
    assert wait_until(lambda: processed(stack, name, topic) >= half // 3, timeout=180, interval=0.02)
    handled_before = processed(stack, name, topic)
    kill_9(stack, name)
    send(stack, events[half:])
    lag_while_down = lags(stack, groups)[name]
    started = time.monotonic()
    stack.start_service(name, report=lambda line: None)
    assert wait_until(drained(stack, groups), timeout=240, interval=1.0), lags(stack, groups)
    return handled_before, lag_while_down, time.monotonic() - started


# --- the services' own state, read with their own roles -------------------------------------


async def _fetch(stack: Stack, service: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Run a query with the service's own DSN (its role can read only its schema)."""
    conn = await asyncpg.connect(stack.service_process(service).env[f"{service.upper()}_DATABASE_URL"])
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows
    finally:
        await conn.close()


def fetch(stack: Stack, service: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Run a read query in a service's schema with its own role."""
    return asyncio.run(_fetch(stack, service, query, *args))


def unprocessed(stack: Stack, service: str, events: Sequence[Event]) -> int:
    """Return how many of the events the service has no processed-event record of."""
    ids = [e.event_id for e in events]
    rows = fetch(
        stack, service, "SELECT count(*) AS n FROM processed_events WHERE event_id = ANY($1::uuid[])", ids
    )
    return len(ids) - int(rows[0]["n"])


def latest_held(
    stack: Stack, service: str, table: str, chain: str
) -> dict[PriceKey, tuple[int, int | None, bool, datetime]]:
    """Return a service's current price of each store's product in a chain, keyed as the reference is."""
    rows = fetch(
        stack,
        service,
        f"""SELECT store_id, sku, price_cents, was_price_cents, available, observed_at
            FROM {table} WHERE chain = $1""",
        chain,
    )
    held = {
        (chain, r["store_id"], r["sku"]): (
            r["price_cents"],
            r["was_price_cents"],
            r["available"],
            r["observed_at"],
        )
        for r in rows
    }
    assert len(held) == len(rows), "one row per store and product"
    return held


def assert_grouping_matches(stack: Stack, chain: str, reference: PriceReference) -> None:
    """Grouping's latest prices and per-store counts equal the reference: each event counted once."""
    assert latest_held(stack, "grouping", "latest_prices", chain) == reference.latest
    stores = fetch(
        stack, "grouping", "SELECT store_id, observed, last_observed_at FROM stores WHERE chain = $1", chain
    )
    # `observed` adds up every batch handled: an event handled twice would count twice.
    assert {(chain, r["store_id"]): r["observed"] for r in stores} == reference.observed
    assert {(chain, r["store_id"]): r["last_observed_at"] for r in stores} == reference.last_observed_at
    assert unprocessed(stack, "grouping", reference.events) == 0


def assert_bargains_history_matches(stack: Stack, chain: str, reference: PriceReference) -> None:
    """Bargains' compact history equals folding every observation once, in order."""
    rows = fetch(
        stack,
        "bargains",
        """SELECT store_id, sku, price_cents, was_price_cents, starts_at, ends_at FROM runs
           WHERE chain = $1 ORDER BY store_id, sku, starts_at""",
        chain,
    )
    found: dict[PriceKey, list[Segment]] = {}
    for r in rows:
        found.setdefault((chain, r["store_id"], r["sku"]), []).append(
            Segment(r["price_cents"], r["was_price_cents"], r["starts_at"], r["ends_at"])
        )
    assert {k: tuple(v) for k, v in found.items()} == reference.history
    assert unprocessed(stack, "bargains", reference.events) == 0


def stored_products(
    stack: Stack, chains: Sequence[str]
) -> dict[ProductKey, tuple[str, str | None, datetime]]:
    """Return substitutions' products of some chains: (name, barcode, observed_at)."""
    rows = fetch(
        stack,
        "substitutions",
        "SELECT chain, sku, name, barcode, observed_at FROM products WHERE chain = ANY($1::text[])",
        list(chains),
    )
    return {(r["chain"], r["sku"]): (r["name"], r["barcode"], r["observed_at"]) for r in rows}


def substitute_lists(stack: Stack, chains: Sequence[str]) -> dict[ProductKey, Any]:
    """Return the stored substitute list of every product of some chains."""
    rows = fetch(
        stack,
        "substitutions",
        "SELECT chain, sku, substitutes FROM substitutes WHERE chain = ANY($1::text[])",
        list(chains),
    )
    return {(r["chain"], r["sku"]): r["substitutes"] for r in rows}


def assert_identical_links(
    stack: Stack, reference: dict[ProductKey, tuple[str, str | None, datetime]]
) -> None:
    """Every product lists, at level L1, exactly the products of other chains with its barcode."""
    chains = sorted({chain for chain, _ in reference})
    expected = {
        key: {other for other, (_, barcode, _) in reference.items() if barcode == code and other[0] != key[0]}
        for key, (_, code, _) in reference.items()
    }
    found = {
        key: {(row["chain"], row["sku"]) for row in json.loads(rows) if row["level"] == "L1"}
        for key, rows in substitute_lists(stack, chains).items()
    }
    assert found == expected


# --- the tests --------------------------------------------------------------------------------


def test_grouping_killed_mid_stream_counts_every_event_once(stack: Stack) -> None:
    """kill -9 grouping mid-stream, publish the rest while it is down, restart: every event counted once."""
    chain = "fault-kill-grouping"
    events = price_events(chain, stores=80, skus=100, rounds=3, rng=random.Random(1))
    reference = reference_of(events)
    handled_before, lag_while_down, drain_s = kill_mid_stream(stack, "grouping", PRICES.name, events)
    handled_after = processed(stack, "grouping", PRICES.name)

    print(
        f"\ngrouping kill -9: {len(events)} events ({reference.observations} observations, "
        f"{len(reference.latest)} prices); killed after {handled_before} handled, "
        f"lag {lag_while_down} while down; "
        f"restarted and drained in {drain_s:.1f} s handling {handled_after} "
        f"({handled_before + handled_after - len(events)} redelivered, absorbed as duplicates)"
    )
    assert_grouping_matches(stack, chain, reference)


def test_substitutions_killed_mid_stream_holds_every_product_once(stack: Stack) -> None:
    """kill -9 substitutions mid-stream, restart: every product's newest description, links both ways."""
    chains = ("fault-subs-a", "fault-subs-b")
    events = product_events(chains, count=240, rng=random.Random(2), renamed=30, stale=30, barcodes_from=0)
    reference = products_reference(events)
    handled_before, _, drain_s = kill_mid_stream(stack, "substitutions", OBSERVED.name, events)

    stored = stored_products(stack, chains)
    lists = substitute_lists(stack, chains)
    assert stored == reference
    assert set(lists) == set(reference), "every product has its list, once (one row per product)"
    assert unprocessed(stack, "substitutions", events) == 0

    # Identical listings link both ways, whichever side arrived before the kill and which after.
    assert_identical_links(stack, reference)
    links = sum(len(json.loads(rows)) for rows in lists.values())
    print(
        f"\nsubstitutions kill -9: {len(events)} events ({len(reference)} products, "
        f"{links} substitute links); killed after {handled_before} handled; "
        f"restarted (model load included) and drained in {drain_s:.1f} s"
    )


def test_postgres_restart_mid_stream_loses_nothing_and_dead_letters_nothing(stack: Stack) -> None:
    """PostgreSQL stops for seconds mid-stream: services wait and reconnect, nothing lost or dead-lettered."""
    chain = "fault-pg"
    prices = price_events(chain, stores=60, skus=60, rounds=3, rng=random.Random(3), shuffle_rounds=False)
    product_chains = (f"{chain}-a", f"{chain}-b")
    products = product_events(
        product_chains, count=60, rng=random.Random(4), renamed=10, stale=0, barcodes_from=10_000
    )
    reference = reference_of(prices)
    groups = {
        "grouping": [PRICES.name],
        "bargains": [PRICES.name, OBSERVED.name],
        "substitutions": [OBSERVED.name],
    }
    letters_before = dead_letters(stack)
    retries_before = transient_retries(stack)
    # A steady stream over ~15 s; PostgreSQL goes away for a few seconds in the middle of it.
    slices = 30
    # Contiguous slices keep each store's rounds in publish order (the reference folds in that order).
    stream: list[list[Event]] = [
        list(prices[i * len(prices) // slices : (i + 1) * len(prices) // slices]) for i in range(slices)
    ]
    for i, product in enumerate(products):
        stream[i * slices // len(products)].append(product)
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            for part in stream:
                send(stack, part)
                time.sleep(0.5)
        except BaseException as exc:  # the main thread reports it
            failures.append(exc)

    publisher = threading.Thread(target=publish, name="faults-publisher")
    publisher.start()
    time.sleep(4)
    stack.postgres.stop()
    down_at = time.monotonic()
    time.sleep(5)
    stack.postgres.start()
    outage_s = time.monotonic() - down_at
    publisher.join(timeout=120)
    assert not publisher.is_alive()
    assert not failures, failures
    started = time.monotonic()
    assert wait_until(lambda: all_ready(stack), timeout=120), "services reconnect by themselves"
    assert wait_until(drained(stack, groups), timeout=240, interval=1.0), lags(stack, groups)
    drain_s = time.monotonic() - started
    letters = {name: n - letters_before.get(name, 0) for name, n in dead_letters(stack).items()}
    retried = transient_retries(stack) - retries_before

    print(
        f"\npostgres down {outage_s:.1f} s mid-stream of {len(prices)} price events "
        f"({reference.observations} observations) and {len(products)} products; "
        f"drained {drain_s:.1f} s after it came back; {retried} handler retries while it was away, "
        f"new dead letters: {sum(letters.values())}"
    )
    assert not any(letters.values()), (
        f"transient database errors must be retried, not dead-lettered: {letters}"
    )
    assert_grouping_matches(stack, chain, reference)
    assert_bargains_history_matches(stack, chain, reference)
    assert stored_products(stack, product_chains) == products_reference(products)
    assert unprocessed(stack, "substitutions", products) == 0
    assert_identical_links(stack, products_reference(products))


Readiness = dict[str, tuple[int, dict[str, bool]]]


def _readiness(stack: Stack) -> Readiness:
    """Return each service's readiness: status code and checks, all services asked at once.

    Without the broker each answer takes the services' whole ping timeout (2 s): asked one
    after the other, one round took 10 s.
    """

    def ask(name: str) -> tuple[int, dict[str, bool]]:
        response = httpx.get(f"{stack.service_process(name).url}/health/ready", timeout=10)
        return response.status_code, response.json()["checks"]

    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        return dict(zip(SERVICES, pool.map(ask, SERVICES), strict=True))


def test_ready_turns_off_without_the_broker_and_back_on_with_it(stack: Stack) -> None:
    """Readiness follows the broker: not ready while it is down, ready again when it is back."""
    assert all(code == 200 for code, _ in _readiness(stack).values())

    stack.broker.process.stop(timeout=10)
    rounds: list[Readiness] = []

    def all_refused() -> bool:
        rounds.append(_readiness(stack))
        return all(code == 503 for code, _ in rounds[-1].values())

    assert wait_until(all_refused, timeout=30), rounds[-1]
    for _, checks in rounds[-1].values():
        assert checks == {"broker": False, "database": True, "migrations": True}
    # The process stays up while it waits for the broker: liveness is not readiness.
    for name in SERVICES:
        assert httpx.get(f"{stack.service_process(name).url}/health/live").status_code == 200

    stack.broker.start()
    asyncio.run(ensure_topics(stack.config.bootstrap_servers))
    assert wait_until(lambda: all(code == 200 for code, _ in _readiness(stack).values()), timeout=60), (
        _readiness(stack)
    )


def test_broker_restart_services_reconnect_and_process_new_events(stack: Stack) -> None:
    """The broker restarts empty: the services reconnect and process events published afterwards."""
    stack.broker.process.stop(timeout=10)
    stack.broker.start()
    # The local broker keeps messages in memory only: its topics come back empty.
    asyncio.run(ensure_topics(stack.config.bootstrap_servers))
    started = time.monotonic()
    assert wait_until(lambda: all_ready(stack), timeout=120)
    ready_s = time.monotonic() - started

    chain = "fault-broker"
    prices = price_events(chain, stores=5, skus=30, rounds=2, rng=random.Random(5), shuffle_rounds=False)
    products = product_events(
        (chain,), count=5, rng=random.Random(6), renamed=0, stale=0, barcodes_from=20_000
    )
    reference = reference_of(prices)
    send(stack, [*prices, *products])
    published = time.monotonic()

    def grouping_has_them() -> bool:
        rows = fetch(
            stack, "grouping", "SELECT coalesce(sum(observed), 0) AS n FROM stores WHERE chain = $1", chain
        )
        return int(rows[0]["n"]) == reference.observations

    def bargains_has_them() -> bool:
        return unprocessed(stack, "bargains", [*prices, *products]) == 0

    def substitutions_has_them() -> bool:
        return len(stored_products(stack, (chain,))) == len(products)

    assert wait_until(grouping_has_them, timeout=180, interval=0.5), "grouping consumes after the restart"
    grouping_s = time.monotonic() - published
    assert wait_until(bargains_has_them, timeout=180, interval=0.5), "bargains consumes after the restart"
    bargains_s = time.monotonic() - published
    assert wait_until(substitutions_has_them, timeout=180, interval=0.5), "substitutions consumes after it"
    substitutions_s = time.monotonic() - published
    groups = {name: [spec.name for spec in TOPICS if name in spec.consumers] for name in SERVICES}
    assert wait_until(drained(stack, groups), timeout=120, interval=1.0), lags(stack, groups)

    print(
        f"\nbroker restarted (empty): services ready again in {ready_s:.1f} s; "
        f"{len(prices)} new price events and "
        f"{len(products)} products reached grouping in {grouping_s:.1f} s, bargains in {bargains_s:.1f} s, "
        f"substitutions in {substitutions_s:.1f} s"
    )
    assert_grouping_matches(stack, chain, reference)
    assert_bargains_history_matches(stack, chain, reference)
    assert stored_products(stack, (chain,)) == products_reference(products)
    # No reconnecting consumer made a topic of its own before the operator's were back.
    held = asyncio.run(describe_topics(stack.config.bootstrap_servers, [spec.name for spec in TOPICS]))
    assert {info.name: info.partitions for info in held} == {spec.name: spec.partitions for spec in TOPICS}


def test_a_burst_far_above_the_steady_rate_drains_without_loss(stack: Stack) -> None:
    """100,000 observations at once: report the backlog peak and drain time; nothing lost."""
    chain = "fault-burst"
    # Produced in about a second, ten times the latency benchmark's steady rate: twice as many
    # would prove no more and cost the suite half a minute of both cores.
    events = price_events(
        chain, stores=20, skus=5_000, rounds=1, rng=random.Random(7), per_event=500, shuffle_rounds=False
    )
    reference = reference_of(events)
    groups = {"grouping": [PRICES.name], "bargains": [PRICES.name]}
    letters_before = dead_letters(stack)

    started = time.monotonic()
    produce_s = send(stack, events)
    peak = dict.fromkeys(groups, 0)
    done: dict[str, float] = {}
    deadline = started + 280
    while len(done) < len(groups) and time.monotonic() < deadline:
        for name, lag in lags(stack, groups).items():
            peak[name] = max(peak[name], lag)
            if lag == 0 and name not in done:
                done[name] = time.monotonic() - started
        time.sleep(0.5)
    letters = {name: n - letters_before.get(name, 0) for name, n in dead_letters(stack).items()}

    observations = reference.observations
    rates = ", ".join(f"{name} {observations / s:,.0f}/s" for name, s in done.items())
    print(
        f"\nburst: {len(events)} events, {observations:,} observations produced in {produce_s:.1f} s "
        f"({observations / produce_s:,.0f}/s); backlog peak (events) "
        + ", ".join(f"{name} {n}" for name, n in peak.items())
        + "; drained in "
        + ", ".join(f"{name} {s:.1f} s" for name, s in done.items())
        + f" ({rates}); new dead letters {sum(letters.values())}"
    )
    assert set(done) == set(groups), f"not drained in time: {lags(stack, groups)}"
    assert not any(letters.values()), letters
    held = fetch(
        stack,
        "grouping",
        "SELECT count(*) AS n, coalesce(sum(price_cents), 0) AS total FROM latest_prices WHERE chain = $1",
        chain,
    )[0]
    counted = fetch(stack, "grouping", "SELECT sum(observed) AS n FROM stores WHERE chain = $1", chain)[0]
    history = fetch(
        stack,
        "bargains",
        "SELECT count(*) AS n, coalesce(sum(price_cents), 0) AS total FROM history WHERE chain = $1",
        chain,
    )[0]
    total = sum(price for price, *_ in reference.latest.values())
    print(
        f"grouping holds {held['n']:,} prices (observed {counted['n']:,}), "
        f"bargains {history['n']:,} history rows; "
        f"reference {len(reference.latest):,}"
    )
    assert (int(held["n"]), int(held["total"])) == (len(reference.latest), total)
    assert int(counted["n"]) == observations
    assert (int(history["n"]), int(history["total"])) == (len(reference.history), total)
    assert unprocessed(stack, "grouping", events) == 0
    assert unprocessed(stack, "bargains", events) == 0
