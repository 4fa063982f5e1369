"""Dead-letter topics: see what was rejected and why, and send it back once fixed."""

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from contracts import TOPICS
from pricestream.kafka import high_watermarks, partitions_of, read_partition

REPLAY_GROUP = "pricestream-dlq-replay"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message with the reason the consumer gave."""

    dlq: str
    offset: int
    source: str
    consumer_group: str
    reason: str
    attempts: str
    error: str
    size: int
    key: str
    truncated_from: int | None


def _headers(record: object) -> dict[str, str]:
    raw = getattr(record, "headers", None) or ()
    return {name: value.decode("utf-8", errors="replace") for name, value in raw}


async def list_dead_letters(
    bootstrap: str, *, topics: Sequence[str] = (), limit: int = 20
) -> dict[str, list[DeadLetter]]:
    """Return the newest dead letters of each DLQ (all, or the DLQs of `topics`)."""
    wanted = [spec.dlq for spec in TOPICS if not topics or spec.name in topics or spec.dlq in topics]
    found: dict[str, list[DeadLetter]] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=16 * 1024 * 1024
    )
    try:
        await consumer.start()
        for dlq in wanted:
            tps = await partitions_of(consumer, dlq)
            starts = await consumer.beginning_offsets(tps) if tps else {}
            ends = await high_watermarks(bootstrap, dict(starts))
            letters = [
                _letter(dlq, record)
                for tp in tps
                for record in await read_partition(consumer, tp, max(starts[tp], ends[tp] - limit), ends[tp])
            ]
            found[dlq] = letters[-limit:]
    finally:
        await consumer.stop()
    return found


def _letter(dlq: str, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """Read a dead letter's origin and reason from the headers the consumer wrote."""
    h = _headers(record)
    return DeadLetter(
        dlq,
        record.offset,
        f"{h.get('dlq_source_topic')}[{h.get('dlq_source_partition')}]@{h.get('dlq_source_offset')}",
        h.get("dlq_consumer_group", "?"),
        h.get("dlq_reason", "?"),
        h.get("dlq_attempts", "?"),
        h.get("dlq_error", ""),
        len(record.value or b""),
        (record.key or b"").decode("utf-8", errors="replace"),
        int(h["dlq_truncated_from_bytes"]) if "dlq_truncated_from_bytes" in h else None,
    )


async def replay(bootstrap: str, topic: str) -> int:
    """Send a topic's dead letters back to it, each source message once; return how many.

    Only letters already in the DLQ when the replay starts are sent (a message that fails
    again comes back as a new letter, for a later replay). A replay group remembers how
    far it got, so running it again sends only newer letters.
    """
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    source = dlq.removesuffix(".dlq")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    sent: set[tuple[str, str]] = set()
    try:
        await consumer.start()
        await producer.start()
        tps = await partitions_of(consumer, dlq)
        starts = await consumer.beginning_offsets(tps) if tps else {}
        ends = await high_watermarks(bootstrap, dict(starts))
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, (await consumer.committed(tp)) or starts[tp])
        pending = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    h = _headers(record)
                    # Each consumer group dead-letters its own copy; the source needs it once.
                    origin = (h.get("dlq_source_partition", ""), h.get("dlq_source_offset", ""))
                    if origin in sent or "dlq_truncated_from_bytes" in h:
                        continue
                    sent.add(origin)
                    headers = [(k, v.encode()) for k, v in h.items() if not k.startswith("dlq_")]
                    await producer.send_and_wait(source, record.value, key=record.key, headers=headers)
                consumer.seek(tp, min(records[-1].offset + 1, ends[tp]) if records else ends[tp])
            await consumer.commit()
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
    finally:
        await producer.stop()
        await consumer.stop()
    return len(sent)
