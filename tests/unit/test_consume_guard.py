"""The consume guard: retries, DLQ routing and metrics, on FastStream's in-memory broker."""

import json
import uuid
from typing import Any

import asyncpg
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts import CODEC, topic
from contracts.events import PricesScraped
from contracts.schema import EXAMPLE_DIR
from servicekit.consuming import ConsumeGuard, ConsumerGroup, subscribe, subscribe_batch
from servicekit.metrics import Metrics
from servicekit.settings import ServiceSettings

pytestmark = pytest.mark.unit

PRICES = topic("prices.scraped.v1")


def _metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def _guarded_broker(metrics: Metrics, max_attempts: int = 3) -> tuple[KafkaBroker, ConsumeGuard]:
    guard = ConsumeGuard(metrics=metrics, group_id="test", max_attempts=max_attempts, backoff_s=0.0)
    return KafkaBroker(middlewares=[guard.middleware]), guard


def _valid_record() -> tuple[bytes, dict[str, str]]:
    record = CODEC.encode(CODEC.decode((EXAMPLE_DIR / "PricesScraped.v1.json").read_bytes()))
    return record.value, {k: v.decode() for k, v in record.headers}


def _valid_value(store_id: str) -> bytes:
    # A valid PricesScraped of one store; its headers are those of _valid_record.
    doc = json.loads((EXAMPLE_DIR / "PricesScraped.v1.json").read_text())
    doc["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, store_id))
    doc["payload"]["store_id"] = store_id
    return CODEC.encode(CODEC.decode(json.dumps(doc).encode())).value


async def test_valid_event_reaches_handler_typed_and_is_counted() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics)
    received: list[PricesScraped] = []

    @subscribe(broker, PRICES, group_id="test")
    async def on_prices_scraped(event: PricesScraped) -> None:
        received.append(event)

    value, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=PRICES.name, headers=headers)
    assert len(received) == 1
    assert received[0].payload.store_id == "7724"
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 1


async def test_off_contract_message_goes_to_dlq_once_with_reason() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics)
    handled: list[Any] = []
    dead: list[Any] = []

    @subscribe(broker, PRICES, group_id="test")
    async def on_prices_scraped(event: PricesScraped) -> None:
        handled.append(event)

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append((message.body, message.headers))

    doc = json.loads((EXAMPLE_DIR / "PricesScraped.v1.json").read_text())
    doc["payload"]["observations"][0]["price_cents"] = -5
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(json.dumps(doc).encode(), topic=PRICES.name)
        await test_broker.publish(b"{not json", topic=PRICES.name)
        value, headers = _valid_record()
        await test_broker.publish(value, topic=PRICES.name, headers=headers)

    assert len(handled) == 1, "the valid event after two bad ones is still handled"
    assert [h["dlq_reason"] for _, h in dead] == ["invalid", "not_json"]
    body, headers = dead[0]
    assert json.loads(body) == doc, "the DLQ keeps the original bytes"
    assert "price_cents" in headers["dlq_error"]
    assert headers["dlq_attempts"] == "1", "a contract error is not retried"
    assert headers["dlq_source_topic"] == PRICES.name
    assert headers["dlq_consumer_group"] == "test"
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 2


async def test_failing_handler_is_retried_then_dead_lettered() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics, max_attempts=3)
    attempts: list[int] = []
    dead: list[Any] = []

    @subscribe(broker, PRICES, group_id="test")
    async def on_prices_scraped(event: PricesScraped) -> None:
        attempts.append(1)
        raise RuntimeError("database is down")

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append(message.headers)

    value, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=PRICES.name, headers=headers)

    assert len(attempts) == 3
    assert dead[0]["dlq_reason"] == "handler_error"
    assert dead[0]["dlq_attempts"] == "3"
    assert "RuntimeError: database is down" in dead[0]["dlq_error"]
    assert dead[0]["event_type"] == "PricesScraped", "original headers are kept"
    assert (
        _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="handler_error") == 3
    )


async def test_handler_that_recovers_is_not_dead_lettered() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics, max_attempts=3)
    calls: list[int] = []

    @subscribe(broker, PRICES, group_id="test")
    async def on_prices_scraped(event: PricesScraped) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("blip")

    value, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=PRICES.name, headers=headers)
    assert len(calls) == 2
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 0
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 1


async def test_an_away_database_is_waited_for_beyond_the_attempts_never_dead_lettered() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics, max_attempts=2)
    calls: list[int] = []

    @subscribe(broker, PRICES, group_id="test")
    async def on_prices_scraped(event: PricesScraped) -> None:
        calls.append(1)
        if len(calls) <= 4:  # more outages than attempts: PostgreSQL restarting
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    value, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(value, topic=PRICES.name, headers=headers)
    assert len(calls) == 5
    assert _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="transient") == 4
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 0
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 1


async def test_batch_subscriber_gets_valid_events_as_one_typed_list_counted_per_event() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics)
    batches: list[list[PricesScraped]] = []

    @subscribe_batch(broker, PRICES, group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        batches.append(events)

    _, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            _valid_value("1"), _valid_value("2"), _valid_value("3"), topic=PRICES.name, headers=headers
        )
        await test_broker.publish(_valid_value("4"), topic=PRICES.name, headers=headers)

    assert [[e.payload.store_id for e in batch] for batch in batches] == [["1", "2", "3"], ["4"]]
    assert all(isinstance(e, PricesScraped) for batch in batches for e in batch)
    assert _metric(metrics, "pricestream_messages_consumed_total", topic=PRICES.name) == 4
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 4
    assert _metric(metrics, "pricestream_handler_duration_seconds_count", topic=PRICES.name) == 2, (
        "one handler call per batch"
    )
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 0


async def test_off_contract_records_of_a_batch_are_dead_lettered_alone() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics)
    batches: list[list[str]] = []
    dead: list[tuple[bytes, dict[str, str]]] = []

    @subscribe_batch(broker, PRICES, group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        batches.append([e.payload.store_id for e in events])

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append((message.body, message.headers))

    doc = json.loads(_valid_value("bad"))
    doc["payload"]["observations"][0]["price_cents"] = -5
    invalid = json.dumps(doc).encode()
    _, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            _valid_value("1"), invalid, _valid_value("2"), b"{not json", topic=PRICES.name, headers=headers
        )

    assert batches == [["1", "2"]], "the valid records reach the handler together, in order"
    assert [(body, h["dlq_reason"]) for body, h in dead] == [(invalid, "invalid"), (b"{not json", "not_json")]
    assert "price_cents" in dead[0][1]["dlq_error"]
    assert all(h["dlq_attempts"] == "1" for _, h in dead), "a contract error is not retried"
    assert dead[0][1]["event_type"] == "PricesScraped", "original headers are kept"
    assert _metric(metrics, "pricestream_messages_consumed_total", topic=PRICES.name) == 4
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 2
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 2
    assert _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="invalid") == 1
    assert _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="not_json") == 1


async def test_a_batch_of_only_off_contract_records_never_calls_the_handler() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics)
    calls: list[list[PricesScraped]] = []
    dead: list[dict[str, str]] = []

    @subscribe_batch(broker, PRICES, group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        calls.append(events)

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append(message.headers)

    _, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(b"{not json", b"[]", topic=PRICES.name, headers=headers)

    assert calls == []
    assert [h["dlq_reason"] for h in dead] == ["not_json", "invalid"]
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 0


async def test_a_failing_batch_is_handled_one_by_one_and_only_the_bad_event_dead_lettered() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics, max_attempts=3)
    calls: list[list[str]] = []
    handled: list[str] = []
    dead: list[tuple[bytes, dict[str, str]]] = []

    @subscribe_batch(broker, PRICES, group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        stores = [e.payload.store_id for e in events]
        calls.append(stores)
        if "poison" in stores:
            raise RuntimeError("poison pill")
        handled.extend(stores)

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append((message.body, message.headers))

    poison = _valid_value("poison")
    _, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            _valid_value("1"), poison, _valid_value("3"), topic=PRICES.name, headers=headers
        )

    assert calls == [["1", "poison", "3"], ["1"], ["poison"], ["poison"], ["poison"], ["3"]], (
        "the batch once, then each event alone, the bad one with its attempts"
    )
    assert handled == ["1", "3"]
    assert len(dead) == 1
    body, dlq_headers = dead[0]
    assert body == poison, "the DLQ keeps the bad event's original bytes"
    assert dlq_headers["dlq_reason"] == "handler_error"
    assert dlq_headers["dlq_attempts"] == "3"
    assert "RuntimeError: poison pill" in dlq_headers["dlq_error"]
    assert _metric(metrics, "pricestream_messages_consumed_total", topic=PRICES.name) == 3
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 2
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 1
    assert (
        _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="handler_error") == 3
    )


async def test_a_batch_whose_database_is_away_is_retried_whole_never_dead_lettered() -> None:
    metrics = Metrics()
    broker, _ = _guarded_broker(metrics, max_attempts=1)
    calls: list[list[str]] = []
    dead: list[Any] = []

    @subscribe_batch(broker, PRICES, group_id="test", max_records=10)
    async def on_prices_scraped(events: list[PricesScraped]) -> None:
        calls.append([e.payload.store_id for e in events])
        if len(calls) == 1:
            raise ConnectionError("connection refused")
        if len(calls) <= 3:  # more outages than attempts: PostgreSQL restarting
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    @broker.subscriber(PRICES.dlq)
    async def on_dlq(message: KafkaMessage) -> None:
        dead.append(message.headers)

    _, headers = _valid_record()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish_batch(
            _valid_value("1"), _valid_value("2"), _valid_value("3"), topic=PRICES.name, headers=headers
        )

    assert calls == [["1", "2", "3"]] * 4, "the whole batch is retried, never split"
    assert dead == []
    assert _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="transient") == 3
    assert (
        _metric(metrics, "pricestream_messages_failed_total", topic=PRICES.name, reason="handler_error") == 0
    )
    assert _metric(metrics, "pricestream_messages_dead_lettered_total", topic=PRICES.name) == 0
    assert _metric(metrics, "pricestream_messages_processed_total", topic=PRICES.name) == 3


def test_only_a_latency_critical_batch_subscriber_polls_the_broker_more_often() -> None:
    broker = KafkaBroker()

    @subscribe_batch(broker, PRICES, group_id="bargains", max_records=10, latency_critical=True)
    async def on_prices(events: list[PricesScraped]) -> None: ...

    @subscribe_batch(broker, PRICES, group_id="catalogue", max_records=10)
    async def on_prices_too(events: list[PricesScraped]) -> None: ...

    @subscribe(broker, topic("groups.changed.v1"), group_id="scraper")
    async def on_groups(event: object) -> None: ...

    by_group: dict[str, Any] = {subscriber.group_id: subscriber for subscriber in broker.subscribers}  # type: ignore[attr-defined]
    critical, batch, single = by_group["bargains"], by_group["catalogue"], by_group["scraper"]
    # FastStream keeps the consumer's options here until the subscriber starts.
    assert critical._connection_args["fetch_max_wait_ms"] == 50
    assert critical.batch_timeout_ms == 50
    assert batch._connection_args["fetch_max_wait_ms"] == 500, "aiokafka's default"
    assert batch.batch_timeout_ms == 200, "FastStream's default"
    assert single._connection_args["fetch_max_wait_ms"] == 500


def test_a_services_consumer_group_gives_every_subscription_its_name_batch_and_session() -> None:
    settings = ServiceSettings(
        service_name="bargains", consumer_max_batch=7, consumer_session_timeout_ms=3000
    )
    consumers = ConsumerGroup.of(settings)
    broker = KafkaBroker()

    @consumers.subscribe_batch(broker, PRICES, latency_critical=True)
    async def on_prices(events: list[PricesScraped]) -> None: ...

    @consumers.subscribe(broker, topic("groups.changed.v1"))
    async def on_groups(event: object) -> None: ...

    by_topic: dict[str, Any] = {s.topic_names[0]: s for s in broker.subscribers}  # type: ignore[attr-defined]
    batch, single = by_topic[PRICES.name], by_topic["groups.changed.v1"]
    assert consumers == ConsumerGroup("bargains", 7, 3000)
    assert (batch.group_id, single.group_id) == ("bargains", "bargains")
    assert batch.max_records == 7
    assert batch._connection_args["fetch_max_wait_ms"] == 50
    assert (
        batch._connection_args["session_timeout_ms"] == single._connection_args["session_timeout_ms"] == 3000
    )
