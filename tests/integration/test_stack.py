"""The real stack: events reach handlers and are committed; bad ones go to the DLQ."""

import asyncio
import contextlib
import json
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from contracts import CODEC, SERVICES, topic
from contracts.events import PricesScraped
from contracts.events.v1 import PricesScrapedPayload
from contracts.schema import EXAMPLE_DIR
from pricestream.stack import Stack
from servicekit.broker import make_broker
from servicekit.metrics import processed_counts_from_text
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")


def _prices_event(store_id: str) -> PricesScraped:
    payload = json.loads((EXAMPLE_DIR / "PricesScraped.v1.json").read_text())["payload"]
    payload["store_id"] = store_id
    return PricesScraped.new(
        producer="test", payload=PricesScrapedPayload.model_validate_json(json.dumps(payload))
    )


async def _produce(
    stack: Stack, name: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=stack.config.bootstrap_servers)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(name, value, key=key, headers=headers)
        return int(metadata.partition)
    finally:
        await producer.stop()


async def _service_conn(stack: Stack, service: str) -> asyncpg.Connection:
    launch = stack.service_process(service)
    return await asyncpg.connect(launch.env[f"{service.upper()}_DATABASE_URL"])


async def _wait_for(check: object, timeout: float = 30.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.2)
    return False


async def _committed(stack: Stack, group: str, partition: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.config.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        return int(await consumer.committed(TopicPartition(PRICES.name, partition)) or 0)
    finally:
        await consumer.stop()


async def test_all_services_are_ready(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        for name in SERVICES:
            response = await client.get(f"{stack.service_process(name).url}/health/ready")
            assert response.status_code == 200, response.text
            assert response.json()["checks"] == {"broker": True, "database": True, "migrations": True}


async def test_plain_aiokafka_event_reaches_handlers_and_is_committed(stack: Stack) -> None:
    event = _prices_event("it-1")
    record = CODEC.encode(event)
    partition = await _produce(stack, PRICES.name, record.value, record.key, list(record.headers))

    for service in PRICES.consumers:
        conn = await _service_conn(stack, service)
        try:

            async def handled(conn: asyncpg.Connection = conn) -> bool:
                return bool(
                    await conn.fetchval("SELECT 1 FROM processed_events WHERE event_id = $1", event.event_id)
                )

            assert await _wait_for(handled), f"{service} did not handle the event"
        finally:
            await conn.close()

        async def committed(service: str = service) -> bool:
            return await _committed(stack, service, partition) >= 1

        assert await _wait_for(committed), f"{service} did not commit the offset"


async def _processed(stack: Stack, service: str) -> int:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{stack.service_process(service).url}/metrics")).text
    counts = processed_counts_from_text(text)
    return counts[PRICES.name]


async def test_duplicate_event_is_recorded_once(stack: Stack) -> None:
    event = _prices_event("it-dup")
    record = CODEC.encode(event)
    before = await _processed(stack, "grouping")
    for _ in range(2):
        await _produce(stack, PRICES.name, record.value, record.key, list(record.headers))

    async def both_handled() -> bool:
        return await _processed(stack, "grouping") >= before + 2

    assert await _wait_for(both_handled)
    conn = await _service_conn(stack, "grouping")
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM processed_events WHERE event_id = $1", event.event_id
        )
    finally:
        await conn.close()
    assert count == 1


async def test_poison_message_goes_to_dlq_and_the_next_event_is_processed(stack: Stack) -> None:
    await _produce(stack, PRICES.name, b"\x00 definitely not json", b"coles:poison", [])
    event = _prices_event("it-after-poison")
    record = CODEC.encode(event)
    await _produce(stack, PRICES.name, record.value, record.key, list(record.headers))

    consumer = AIOKafkaConsumer(
        PRICES.dlq, bootstrap_servers=stack.config.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    dead: list[dict[str, str]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline and len(dead) < len(PRICES.consumers):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for message in records:
                    headers = {k: v.decode() for k, v in message.headers}
                    if message.value == b"\x00 definitely not json":
                        dead.append(headers)
    finally:
        await consumer.stop()
    assert sorted(h["dlq_consumer_group"] for h in dead) == sorted(PRICES.consumers)
    assert all(h["dlq_reason"] == "not_json" for h in dead)

    conn = await _service_conn(stack, "bargains")
    try:

        async def handled() -> bool:
            return bool(
                await conn.fetchval("SELECT 1 FROM processed_events WHERE event_id = $1", event.event_id)
            )

        assert await _wait_for(handled)
    finally:
        await conn.close()


async def test_a_service_consumer_never_creates_the_topic_it_names(stack: Stack) -> None:
    """A consumer of a service process subscribed to a missing topic does not start, and creates none.

    The local broker creates a topic, with its own default of 4 partitions, for any client that
    names a missing one and allows it. A service consumer reconnecting to a restarted broker did
    so before the operator's topics were back (prices.scraped.v1 came back with 4, not 6).
    """
    bootstrap = stack.config.bootstrap_servers
    # Building a service's broker sets the rule for every aiokafka client of the process.
    make_broker(ServiceSettings(service_name="typo-test", kafka_bootstrap_servers=bootstrap))
    missing = f"prices.scrapd.v1.{uuid4().hex[:8]}"
    # A plain consumer, as FastStream makes one, told to give up on a missing topic in 3 s, not 40.
    consumer = AIOKafkaConsumer(
        missing, bootstrap_servers=bootstrap, group_id="typo", request_timeout_ms=3000
    )
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await asyncio.wait_for(consumer.start(), 30)
    finally:
        # A consumer that did start, on a topic the broker created, can take minutes to leave.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consumer.stop(), 10)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert missing not in topics
    assert PRICES.name in topics


async def test_a_service_role_cannot_read_another_schema(stack: Stack) -> None:
    conn = await _service_conn(stack, "scraper")
    try:
        assert await conn.fetchval("SELECT count(*) FROM scraper.processed_events") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM grouping.processed_events")
    finally:
        await conn.close()


async def test_metrics_and_asyncapi_are_served(stack: Stack) -> None:
    url = stack.service_process("grouping").url
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{url}/metrics")).text
        assert "pricestream_handler_duration_seconds_bucket" in metrics
        doc = (await client.get(f"{url}/asyncapi.json")).json()
        assert doc["asyncapi"].startswith("3.")
        assert {c["address"] for c in doc["channels"].values()} >= {"prices.scraped.v1", "groups.changed.v1"}
        live = (await client.get(f"{url}/health/live")).json()
        assert live["status"] == "live"
        ready = (await client.get(f"{url}/health/ready")).text
        assert "postgresql" not in ready
        assert "password" not in ready


def test_event_ids_are_uuids() -> None:
    assert isinstance(_prices_event("x").event_id, UUID)


async def test_a_burst_of_batched_events_is_processed_completely(stack: Stack) -> None:
    """Records produced in batches are all handled: no fetch skips part of a record batch."""
    events = [_prices_event(f"burst-{i % 17}") for i in range(400)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.config.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for event in events:
            record = CODEC.encode(event)
            await producer.send(PRICES.name, record.value, key=record.key, headers=list(record.headers))
        await producer.flush()
    finally:
        await producer.stop()

    ids = [event.event_id for event in events]
    for service in PRICES.consumers:
        conn = await _service_conn(stack, service)
        try:

            async def all_handled(conn: asyncpg.Connection = conn) -> bool:
                found = await conn.fetchval(
                    "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])", ids
                )
                return bool(found == len(ids))

            assert await _wait_for(all_handled, timeout=60), f"{service} missed events of the burst"
        finally:
            await conn.close()
