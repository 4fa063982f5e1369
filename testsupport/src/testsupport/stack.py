"""Start a whole local stack on free ports for a test or a benchmark, and wait on what it does."""

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts import CODEC, Event, topic_for
from pricestream.config import StackConfig
from pricestream.stack import Stack

T = TypeVar("T")


def stack_config(home: Path, replicas: dict[str, int] | None = None) -> StackConfig:
    """Return a stack config on free ports with its state in `home`."""
    return StackConfig.on_free_ports(home, replicas)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll until `predicate` is true; return whether it became true in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def running_stack(home: Path, label: str, replicas: dict[str, int] | None = None) -> Iterator[Stack]:
    """Bring a whole stack up on free ports under `home` (some services in replicas); always bring it down."""
    stack = Stack(stack_config(home, replicas))
    try:
        stack.up(report=lambda line: print(f"[{label}] {line}"))
        yield stack
    finally:
        stack.down(report=lambda line: print(f"[{label}] {line}"))


async def rolled_back(stack: Stack, service: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run work on a service's database in a transaction that is rolled back: the service keeps nothing."""
    env = stack.service_process(service).env
    conn = await asyncpg.connect(env[f"{service.upper()}_DATABASE_URL"])
    transaction = conn.transaction()
    await transaction.start()
    try:
        return await work(conn)
    finally:
        await transaction.rollback()
        await conn.close()


async def publish_events(bootstrap: str, events: Iterable[Event]) -> None:
    """Publish events to their registry topics as their producers would, as fast as the producer goes."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        for event in events:
            record = CODEC.encode(event)
            await producer.send(
                topic_for(type(event)).name, record.value, key=record.key, headers=list(record.headers)
            )
        await producer.flush()
    finally:
        await producer.stop()
