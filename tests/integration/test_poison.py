"""Poison inputs from a plain Kafka client: each lands in the DLQ with its reason, the rest flows."""

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import CODEC, topic
from contracts.events import PricesScraped
from contracts.events.v1 import PricesScrapedPayload
from contracts.schema import EXAMPLE_DIR
from pricestream.dlq import list_dead_letters, replay
from pricestream.stack import Stack

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")
HEADERS = [("event_type", b"PricesScraped"), ("schema_version", b"1")]


def _example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLE_DIR / "PricesScraped.v1.json").read_text())
    return doc


def _with_observation(**changes: object) -> bytes:
    doc = _example()
    doc["payload"]["observations"][0].update(changes)
    return json.dumps(doc).encode()


def _huge() -> bytes:
    """A 5 MB message: far more observations than a batch may carry."""
    doc = _example()
    first = doc["payload"]["observations"][0]
    # Only the required fields: the golden example's first observation carries every label.
    bare = {key: first[key] for key in ("sku", "price_cents", "observed_at")}
    doc["payload"]["observations"] = [bare] * 60_000
    return json.dumps(doc).encode()


def _poisons() -> dict[str, tuple[bytes, list[tuple[str, bytes]], str]]:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    return {
        "not JSON": (b"\x00\x01 this is not json {", [], "not_json"),
        "wrong shape": (b'{"hello": "world"}', HEADERS, "invalid"),
        "unknown type": (
            json.dumps(_example()).encode(),
            [("event_type", b"PriceScrapped"), ("schema_version", b"1")],
            "unknown_event_type",
        ),
        "unknown major version": (
            json.dumps(_example()).encode(),
            [("event_type", b"PricesScraped"), ("schema_version", b"7")],
            "unknown_version",
        ),
        "wrong types": (_with_observation(price_cents="4.50"), HEADERS, "invalid"),
        "negative price": (_with_observation(price_cents=-120), HEADERS, "invalid"),
        "absurd price": (_with_observation(price_cents=2_000_000_000), HEADERS, "invalid"),
        "no time zone": (_with_observation(observed_at="2026-11-20T08:29:41"), HEADERS, "invalid"),
        "in the future": (_with_observation(observed_at=future), HEADERS, "invalid"),
        "5 MB": (_huge(), HEADERS, "invalid"),
    }


async def _dlq_reasons(stack: Stack, keys: set[bytes], expected: int) -> dict[tuple[bytes, str], str]:
    consumer = AIOKafkaConsumer(
        PRICES.dlq,
        bootstrap_servers=stack.config.bootstrap_servers,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    found: dict[tuple[bytes, str], str] = {}
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key in keys:
                        h = {k: v.decode() for k, v in record.headers}
                        found[(record.key, h["dlq_consumer_group"])] = h["dlq_reason"]
    finally:
        await consumer.stop()
    return found


async def test_every_poison_is_dead_lettered_with_its_reason_and_the_stream_goes_on(stack: Stack) -> None:
    poisons = _poisons()
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.config.bootstrap_servers, max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    good_before = PricesScraped.new(
        producer="test", payload=PricesScrapedPayload.model_validate_json(json.dumps(_example()["payload"]))
    )
    good_after = PricesScraped.new(producer="test", payload=good_before.payload)
    try:
        # All on one key: one partition, so the good events are really behind the poison.
        for event in (good_before,):
            record = CODEC.encode(event)
            await producer.send_and_wait(
                PRICES.name, record.value, key=b"poison:1", headers=list(record.headers)
            )
        for name, (value, headers, _) in poisons.items():
            await producer.send_and_wait(PRICES.name, value, key=f"poison:{name}".encode(), headers=headers)
        record = CODEC.encode(good_after)
        await producer.send_and_wait(PRICES.name, record.value, key=b"poison:1", headers=list(record.headers))
    finally:
        await producer.stop()

    keys = {f"poison:{name}".encode() for name in poisons}
    found = await _dlq_reasons(stack, keys, expected=len(poisons) * len(PRICES.consumers))
    by_poison: dict[str, dict[str, str]] = defaultdict(dict)
    for (key, group), reason in found.items():
        by_poison[key.decode().removeprefix("poison:")][group] = reason
    print()
    for name, (_, _, expected) in poisons.items():
        print(f"  {name:22} -> {by_poison.get(name)}")
        assert by_poison.get(name) == dict.fromkeys(PRICES.consumers, expected), name

    # The poisons sit on other partitions than the good events: their dead letters can all be out
    # before a service has reached the good event behind them, so each is waited for a while.
    for service in PRICES.consumers:
        conn = await asyncpg.connect(stack.service_process(service).env[f"{service.upper()}_DATABASE_URL"])
        try:
            for event in (good_before, good_after):
                handled = None
                deadline = asyncio.get_running_loop().time() + 60
                while handled is None and asyncio.get_running_loop().time() < deadline:
                    handled = await conn.fetchval(
                        "SELECT 1 FROM processed_events WHERE event_id = $1", event.event_id
                    )
                    await asyncio.sleep(0 if handled else 0.2)
                assert handled, f"{service} did not process the events around the poison"
        finally:
            await conn.close()


async def test_dlq_list_and_replay(stack: Stack) -> None:
    letters = await list_dead_letters(stack.config.bootstrap_servers, topics=[PRICES.name], limit=100)
    reasons = {letter.reason for letter in letters[PRICES.dlq]}
    assert {"not_json", "invalid", "unknown_version"} <= reasons
    truncated = [
        letter for letter in letters[PRICES.dlq] if letter.size < 1_000_000 and "5 MB" in letter.source
    ]
    assert not truncated or all(letter.size <= 900 * 1024 for letter in truncated)
    first = await replay(stack.config.bootstrap_servers, PRICES.name)
    sources = {letter.source for letter in letters[PRICES.dlq] if letter.reason != "?"}
    assert 0 < first <= len(sources)
    again = await replay(stack.config.bootstrap_servers, PRICES.name)
    assert again <= first, "the replay group remembers how far it got"
