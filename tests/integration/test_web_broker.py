"""The pipeline page's look at the broker: each group's lag per topic, dead letters with their reason."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from catalogue.web.deadletters import DeadLetter, DeadLetterReader
from catalogue.web.lag import LagReader, TopicLag
from contracts import topic
from pricestream.stack import Stack

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")
POISONS = 8
SHOWN = 5


@pytest.fixture(scope="module")
def stack(second_stack: Stack) -> Stack:
    """Not the session's stack: the poison sent here must not reach another test's dead letters."""
    return second_stack


async def _poison_then_read(servers: str) -> tuple[dict[str, list[DeadLetter]], list[TopicLag]]:
    """Send poison to the scraped prices' topic; read lag and dead letters once every group caught up."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, enable_idempotence=False)
    await producer.start()
    try:
        for n in range(POISONS):
            await producer.send_and_wait(PRICES.name, b"not an event %d" % n, key=b"coles:1")
    finally:
        await producer.stop()
    lags: list[TopicLag] = []
    for _ in range(120):
        lags = [lag for lag in await LagReader(servers, timeout_s=30)() if lag.topic == PRICES.name]
        if all(lag.lag == 0 and lag.end >= POISONS for lag in lags):
            found = await DeadLetterReader(servers, timeout_s=30, per_topic=SHOWN)()
            if len(found.get(PRICES.name, [])) == SHOWN:
                return found, lags
        await asyncio.sleep(0.5)
    raise AssertionError(f"the poison was not dead-lettered in time: {lags}")


def test_poison_shows_as_dead_letters_with_their_reason_and_no_lag_once_rejected(stack: Stack) -> None:
    found, lags = asyncio.run(_poison_then_read(stack.config.bootstrap_servers))

    assert set(found) == {PRICES.name}, "only the poisoned topic has dead letters"
    assert len(found[PRICES.name]) == SHOWN, "the newest few, not all of them"
    for letter in found[PRICES.name]:
        assert letter.reason == "not_json"
        assert letter.consumer_group in PRICES.consumers
    # Rejected messages are committed too: every consumer group caught up with the topic's end.
    assert sorted(lag.group for lag in lags) == sorted(PRICES.consumers)
    assert all(lag.lag == 0 and lag.end >= POISONS for lag in lags), lags
