"""Consuming contracts: strict decoding, bounded retries, DLQ routing, metrics."""

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import BaseMiddleware, ContextRepo
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from contracts import CODEC, ContractError, Event, TopicSpec
from contracts.codec import CORRELATION_HEADER, EVENT_ID_HEADER
from contracts.registry import topic as registry_topic
from servicekit.metrics import Metrics
from servicekit.settings import ServiceSettings

log = structlog.get_logger(__name__)

Handler = Callable[..., Awaitable[Any]]

# Errors that say a dependency is away (PostgreSQL restarting, the network), not that the
# message is bad: dead-lettering them would divert good events, so they are retried until
# the dependency is back, without counting against the attempts.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,  # dropped in the middle of a query
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.ClientCannotConnectError,
    asyncpg.exceptions.AdminShutdownError,  # the server is stopping (57P01)
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting or stopping (57P03)
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure or deadlock: try again
)
TRANSIENT_BACKOFF_MAX_S = 5.0


async def decode_contract(msg: StreamMessage[Any], _original: Any = None) -> Event | list[Event]:
    """Decode a message strictly with the contracts codec (raises ContractError).

    A batch arrives already decoded record by record (the guard does it, to dead-letter the
    bad ones alone), so its events pass through.
    """
    if isinstance(msg.body, list):
        return [
            item if isinstance(item, Event) else CODEC.decode(item, headers)
            for item, headers in zip(msg.body, msg.batch_headers, strict=True)
        ]
    return CODEC.decode(msg.body, msg.headers)


_SUBSCRIBER_DEFAULTS: dict[str, Any] = {
    "ack_policy": AckPolicy.ACK,  # committed after handling
    "decoder": decode_contract,
    # A record larger than the fetch size must still arrive, to be dead-lettered.
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    # A service's subscribers share its consumer group: each one joining (at start, after a
    # restart) makes the others rejoin, which they notice at their next heartbeat. At the
    # default 3 s a service with four subscribers took 30 s to start; 0.5 s makes it a few.
    "heartbeat_interval_ms": 500,
}

# For the few subscribers on the price-to-bargain path only. The local broker holds a fetch
# for its whole wait even when records have arrived (aiokafka's default 500 ms: about 120 ms
# a hop at the median), and an empty batch poll is followed by a sleep as long as its
# timeout (FastStream's default 200 ms). Every subscriber polling this often made the test
# suite a third slower, so the rest keep the defaults.
LATENCY_CRITICAL_POLLING: dict[str, Any] = {"fetch_max_wait_ms": 50, "batch_timeout_ms": 50}


def subscribe(
    router: KafkaRouter | KafkaBroker,
    spec: TopicSpec,
    *,
    group_id: str,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
    session_timeout_ms: int | None = None,
) -> Callable[[Handler], Any]:
    """Subscribe a handler to a registry topic: committed after handling, decoded by contract."""
    return router.subscriber(  # type: ignore[no-any-return]
        spec.name,
        **_SUBSCRIBER_DEFAULTS,
        **_session(session_timeout_ms),
        group_id=group_id,
        auto_offset_reset=auto_offset_reset,
        description=spec.description,
    )


def subscribe_batch(
    router: KafkaRouter | KafkaBroker,
    spec: TopicSpec,
    *,
    group_id: str,
    max_records: int,
    latency_critical: bool = False,
    session_timeout_ms: int | None = None,
) -> Callable[[Handler], Any]:
    """Subscribe a handler to a registry topic in batches: it gets a list of events, up to max_records.

    What is waiting is taken at once (never waiting to fill a batch), so a busy topic is
    handled in few transactions and a quiet one without delay. The guard dead-letters bad
    records alone, and a batch whose handler fails is handled again one event at a time.
    A latency-critical subscriber polls the broker more often (LATENCY_CRITICAL_POLLING).
    """
    return router.subscriber(  # type: ignore[no-any-return]
        spec.name,
        **_SUBSCRIBER_DEFAULTS,
        **(LATENCY_CRITICAL_POLLING if latency_critical else {}),
        **_session(session_timeout_ms),
        group_id=group_id,
        auto_offset_reset="earliest",
        description=spec.description,
        batch=True,
        max_records=max_records,
    )


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    """A service's consumer group: what every one of its subscriptions shares, given once."""

    name: str
    max_batch: int = 50
    session_timeout_ms: int | None = None

    @classmethod
    def of(cls, settings: ServiceSettings) -> "ConsumerGroup":
        """Return the group a service's settings describe (named after the service)."""
        return cls(settings.service_name, settings.consumer_max_batch, settings.consumer_session_timeout_ms)

    def subscribe(self, router: KafkaRouter | KafkaBroker, spec: TopicSpec) -> Callable[[Handler], Any]:
        """Subscribe a handler to a registry topic in this group, one event at a time (`subscribe`)."""
        return subscribe(router, spec, group_id=self.name, session_timeout_ms=self.session_timeout_ms)

    def subscribe_batch(
        self, router: KafkaRouter | KafkaBroker, spec: TopicSpec, *, latency_critical: bool = False
    ) -> Callable[[Handler], Any]:
        """Subscribe a handler to a registry topic in this group, in batches of up to max_batch."""
        return subscribe_batch(
            router,
            spec,
            group_id=self.name,
            max_records=self.max_batch,
            latency_critical=latency_critical,
            session_timeout_ms=self.session_timeout_ms,
        )


def _session(timeout_ms: int | None) -> dict[str, Any]:
    """Return a subscriber's session timeout option; none keeps aiokafka's default (10 s)."""
    return {} if timeout_ms is None else {"session_timeout_ms": timeout_ms}


class ConsumeGuard:
    """Per-message policy: count, time, retry a failing handler, then dead-letter it.

    A message that breaks its contract goes to the DLQ at once (retrying cannot fix it);
    one whose handler raises is retried `max_attempts` times with backoff first. Either
    way the partition moves on, and the DLQ keeps the original bytes to replay later.
    A handler failing because PostgreSQL or the network is away (TRANSIENT_ERRORS) is
    retried until it is back: the message is good, and the partition waits for it.
    """

    def __init__(
        self,
        *,
        metrics: Metrics,
        group_id: str,
        max_attempts: int,
        backoff_s: float,
        dlq_max_bytes: int = 900 * 1024,
    ) -> None:
        self.metrics = metrics
        self.group_id = group_id
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.dlq_max_bytes = dlq_max_bytes

    def middleware(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        """Build the FastStream middleware for one message (the broker calls this)."""
        return _GuardMiddleware(msg, context=context, guard=self)

    async def consume(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any], broker: Any
    ) -> Any:
        """Run the handler under the retry and DLQ policy."""
        if isinstance(msg.raw_message, tuple | list):  # a list under FastStream's test broker
            with structlog.contextvars.bound_contextvars(**_trace_of(msg.raw_message)):
                return await self._consume_batch(call_next, msg, broker)
        record: ConsumerRecord = msg.raw_message
        self.metrics.consumed.labels(record.topic).inc()
        with structlog.contextvars.bound_contextvars(**_trace_of([record])):
            return await self._consume_one(call_next, msg, broker, record)

    async def _consume_batch(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any], broker: Any
    ) -> Any:
        """Handle a batch in one call; dead-letter bad records alone; on failure go one by one."""
        records = tuple(msg.raw_message)
        good: list[tuple[ConsumerRecord, Event]] = []
        for record in records:
            self.metrics.consumed.labels(record.topic).inc()
            try:
                good.append((record, CODEC.decode(record.value or b"", _headers_of(record))))
            except ContractError as exc:
                self.metrics.failed.labels(record.topic, exc.reason).inc()
                await self._dead_letter(broker, record, reason=exc.reason, error=str(exc), attempts=1)
        if not good:
            return None
        outage = 0
        while True:
            started = time.perf_counter()
            try:
                result = await call_next(_part_of(msg, good))
            except TRANSIENT_ERRORS as exc:
                outage += 1
                await self._wait_for_dependency(records[0], outage, exc)
            except Exception as exc:
                # One bad event must not hold back the rest: each gets its own attempts and DLQ.
                log.warning(
                    "batch failed, handling its events one by one",
                    topic=records[0].topic,
                    events=len(good),
                    error=f"{type(exc).__name__}: {exc}",
                )
                for record, event in good:
                    with structlog.contextvars.bound_contextvars(**_trace_of([record])):
                        await self._consume_one(call_next, _part_of(msg, [(record, event)]), broker, record)
                return None
            else:
                self.metrics.handler_seconds.labels(records[0].topic).observe(time.perf_counter() - started)
                for record, _ in good:
                    self.metrics.processed.labels(record.topic).inc()
                return result

    async def _consume_one(
        self,
        call_next: Callable[[Any], Awaitable[Any]],
        msg: StreamMessage[Any],
        broker: Any,
        record: ConsumerRecord,
    ) -> Any:
        """Run the handler on one record's message: retries, transient waits, then the DLQ."""
        topic = record.topic
        attempt, outage = 1, 0
        while True:
            started = time.perf_counter()
            try:
                result = await call_next(msg)
            except ContractError as exc:
                self.metrics.failed.labels(topic, exc.reason).inc()
                await self._dead_letter(broker, record, reason=exc.reason, error=str(exc), attempts=attempt)
                return None
            except TRANSIENT_ERRORS as exc:
                outage += 1
                await self._wait_for_dependency(record, outage, exc)
            except Exception as exc:
                self.metrics.failed.labels(topic, "handler_error").inc()
                error = f"{type(exc).__name__}: {exc}"
                if attempt >= self.max_attempts:
                    await self._dead_letter(
                        broker, record, reason="handler_error", error=error, attempts=attempt
                    )
                    return None
                log.warning(
                    "handler failed, retrying",
                    topic=topic,
                    offset=record.offset,
                    attempt=attempt,
                    error=error,
                )
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                attempt += 1
            else:
                self.metrics.handler_seconds.labels(topic).observe(time.perf_counter() - started)
                self.metrics.processed.labels(topic).inc()
                return result

    async def _wait_for_dependency(self, record: ConsumerRecord, outage: int, exc: BaseException) -> None:
        """Back off before retrying a handler whose dependency is away, counting the retry."""
        # Wait for the dependency however long it takes, without using up attempts: the
        # offset stays uncommitted meanwhile, and a shutdown cancels the wait uncommitted.
        self.metrics.failed.labels(record.topic, "transient").inc()
        delay = min(max(self.backoff_s, 0.05) * 2 ** min(outage - 1, 10), TRANSIENT_BACKOFF_MAX_S)
        log.warning(
            "dependency unavailable, retrying",
            topic=record.topic,
            offset=record.offset,
            retries=outage,
            retry_in_s=delay,
            error=f"{type(exc).__name__}: {exc}",
        )
        await asyncio.sleep(delay)

    async def _dead_letter(
        self, broker: Any, record: ConsumerRecord, *, reason: str, error: str, attempts: int
    ) -> None:
        try:
            dlq = registry_topic(record.topic).dlq
        except KeyError:
            dlq = f"{record.topic}.dlq"
        headers = _headers_of(record)
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_error": error[:2_000],
                "dlq_attempts": str(attempts),
                "dlq_consumer_group": self.group_id,
                "dlq_source_topic": record.topic,
                "dlq_source_partition": str(record.partition),
                "dlq_source_offset": str(record.offset),
            }
        )
        value = record.value or b""
        if len(value) > self.dlq_max_bytes:
            # A record too large for the producer would block the partition: keep its head.
            headers["dlq_truncated_from_bytes"] = str(len(value))
            value = value[: self.dlq_max_bytes]
        # If this publish fails the exception propagates: no commit, so the message is retried.
        await broker.publish(value, topic=dlq, key=record.key, headers=headers)
        self.metrics.dead_lettered.labels(record.topic).inc()
        log.warning(
            "message dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            error=error[:300],
            attempts=attempts,
            dlq=dlq,
        )


def _part_of(msg: StreamMessage[Any], items: list[tuple[ConsumerRecord, Event]]) -> StreamMessage[Any]:
    """Return a copy of a batch message holding some of its records, already decoded."""
    # The acknowledgement stays with the original message: the batch commits once, at the end.
    part = copy.copy(msg)
    part.raw_message = tuple(record for record, _ in items)
    part.body = [event for _, event in items]
    part.batch_headers = [_headers_of(record) for record, _ in items]
    return part


def _trace_of(records: Sequence[ConsumerRecord]) -> dict[str, str]:
    """Return what logs bind while records are handled: the event and correlation ids in their headers."""
    if not records:
        return {}
    headers = _headers_of(records[0])
    trace = {name: headers[name] for name in (EVENT_ID_HEADER, CORRELATION_HEADER) if name in headers}
    if len(records) > 1:
        # A batch logs its first event's ids; the handler attributes the batch to that cause too.
        trace["batch_events"] = str(len(records))
    return trace


def _headers_of(record: ConsumerRecord) -> dict[str, str]:
    """Return a record's headers as text."""
    return {name: value.decode("utf-8", errors="replace") for name, value in record.headers or ()}


class _GuardMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, guard: ConsumeGuard) -> None:
        super().__init__(msg, context=context)
        self.guard = guard

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        return await self.guard.consume(call_next, msg, self.context.get("broker"))
