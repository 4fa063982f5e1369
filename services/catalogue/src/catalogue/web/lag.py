"""Consumer lag for the pipeline page: each service's committed offsets against each topic's end.

The groups and their topics come from the contracts' registry (a service's group id is its
name). The local broker answers ListOffsets(latest) short by the last batch's size, so the end
of a partition is the high watermark a fetch response reports; a lag is never below 0.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import SERVICES, consumed_by


@dataclass(frozen=True, slots=True)
class TopicLag:
    """How far one service's consumer group is behind on one topic."""

    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Return the messages on the topic the group has not committed yet."""
        return max(self.end - self.committed, 0)


def consumer_groups() -> dict[str, list[str]]:
    """Return each consuming service's group id and the topics it reads, from the registry."""
    groups = {service: [spec.name for spec in consumed_by(service)] for service in SERVICES}
    return {group: topics for group, topics in groups.items() if topics}


def topic_lags(
    groups: Mapping[str, list[str]],
    partitions: Mapping[str, list[TopicPartition]],
    committed: Mapping[str, Mapping[TopicPartition, int]],
    ends: Mapping[TopicPartition, int],
) -> list[TopicLag]:
    """Sum each group's committed offsets and the partitions' ends per topic (no commit counts as 0)."""
    lags = []
    for group, topics in groups.items():
        for topic in topics:
            tps = partitions.get(topic, [])
            done = sum(max(committed.get(group, {}).get(tp, 0), 0) for tp in tps)
            lags.append(TopicLag(group, topic, done, sum(ends.get(tp, 0) for tp in tps)))
    return lags


class LagReader:
    """Ask the broker for every consumer group's lag, a consumer and an admin client per reading."""

    def __init__(self, bootstrap_servers: str, *, timeout_s: float) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s

    async def __call__(self) -> list[TopicLag]:
        """Return each group's lag per topic it consumes."""
        return await asyncio.wait_for(self._read(consumer_groups()), self.timeout_s)

    async def _read(self, groups: dict[str, list[str]]) -> list[TopicLag]:
        # A caught-up partition's fetch waits this long for records before it says its end.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await consumer.start()
        try:
            await admin.start()
            topics = sorted({t for names in groups.values() for t in names})
            by_topic = {
                t: [TopicPartition(t, p) for p in sorted(await partitions_of(consumer, t))] for t in topics
            }
            every = [tp for tps in by_topic.values() for tp in tps]
            committed = {}
            for group, names in groups.items():
                asked = [tp for t in names for tp in by_topic[t]]
                found = await admin.list_consumer_group_offsets(group, partitions=asked) if asked else {}
                committed[group] = {tp: meta.offset for tp, meta in found.items()}
            return topic_lags(groups, by_topic, committed, await high_watermarks(consumer, every))
        finally:
            await admin.close()
            await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """Return a topic's partition numbers, refreshing metadata once when it is not known yet."""
    found = consumer.partitions_for_topic(topic)
    if found is None:
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    return set(found or ())


async def high_watermarks(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Return each partition's high watermark as a fetch response carries it (ListOffsets may be short)."""
    if not tps:
        return {}
    consumer.assign(tps)
    # Fetching from where ListOffsets says the end is reads at most the last batch.
    for tp, offset in (await consumer.end_offsets(tps)).items():
        consumer.seek(tp, offset)
    ends: dict[TopicPartition, int] = {}
    while len(ends) < len(tps):
        await consumer.getmany(timeout_ms=200, max_records=1)
        ends |= {tp: hw for tp in tps if (hw := consumer.highwater(tp)) is not None}
    return ends
