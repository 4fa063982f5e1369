"""The newest dead letters of each topic, with the reason their consumer gave, for the pipeline page.

A consumer that rejects a message writes it to the topic's `.dlq` with headers saying why
(servicekit's consuming); this reads those headers back, never the message's body.
"""

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from catalogue.web.lag import high_watermarks, partitions_of
from contracts import TOPICS


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message: where it came from, which group rejected it, and why."""

    topic: str
    consumer_group: str
    reason: str
    error: str
    attempts: str
    source_offset: str


def dead_letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """Read a dead letter's origin and reason from the headers its consumer wrote ("?" when missing)."""
    h = {name: value.decode("utf-8", errors="replace") for name, value in record.headers or ()}
    return DeadLetter(
        topic=h.get("dlq_source_topic", record.topic.removesuffix(".dlq")),
        consumer_group=h.get("dlq_consumer_group", "?"),
        reason=h.get("dlq_reason", "?"),
        error=h.get("dlq_error", ""),
        attempts=h.get("dlq_attempts", "?"),
        source_offset=f"{h.get('dlq_source_partition', '?')}@{h.get('dlq_source_offset', '?')}",
    )


class DeadLetterReader:
    """Ask the broker for the newest dead letters of every topic, a consumer per reading."""

    def __init__(self, bootstrap_servers: str, *, timeout_s: float, per_topic: int) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self.per_topic = per_topic

    async def __call__(self) -> dict[str, list[DeadLetter]]:
        """Return each topic's newest dead letters, oldest first; topics without any are left out."""
        return await asyncio.wait_for(self._read(), self.timeout_s)

    async def _read(self) -> dict[str, list[DeadLetter]]:
        # An empty partition's fetch waits this long for records before it says its end.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await consumer.start()
        try:
            by_topic = {
                spec.name: [
                    TopicPartition(spec.dlq, p) for p in sorted(await partitions_of(consumer, spec.dlq))
                ]
                for spec in TOPICS
            }
            every = [tp for tps in by_topic.values() for tp in tps]
            # Every partition's end in one go: most dead-letter topics are empty.
            starts = await consumer.beginning_offsets(every) if every else {}
            ends = await high_watermarks(consumer, every)
            found: dict[str, list[DeadLetter]] = {}
            for topic, tps in by_topic.items():
                records = []
                for tp in tps:
                    records += await self._newest(consumer, tp, starts[tp], ends.get(tp, starts[tp]))
                if records:
                    records.sort(key=lambda r: r.timestamp)
                    found[topic] = [dead_letter(r) for r in records[-self.per_topic :]]
            return found
        finally:
            await consumer.stop()

    async def _newest(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Return a partition's last records up to its end (a fetch may start inside a batch)."""
        first = max(start, end - self.per_topic)
        if first >= end:
            return []
        consumer.assign([tp])
        consumer.seek(tp, first)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while not records or records[-1].offset + 1 < end:
            batch = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            if not batch:
                break
            records += [r for r in batch if r.offset >= first]
        return records
