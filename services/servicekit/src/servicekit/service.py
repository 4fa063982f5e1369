"""What a service is made of, assembled by its bootstrap and run by servicekit."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from fastapi import APIRouter
from faststream.kafka import KafkaBroker

from servicekit.db import Database
from servicekit.metrics import Metrics
from servicekit.settings import ServiceSettings


class Worker(Protocol):
    """A background loop of a service (outbox relay, scheduler) that drains on stop."""

    name: str

    async def run(self, stopping: asyncio.Event) -> None:
        """Work until `stopping` is set, finish what is in flight, then return."""


async def repeat(
    what: str, action: Callable[[], Awaitable[object]], *, every_s: float, stopping: asyncio.Event
) -> None:
    """Run `action` now and every `every_s` until stopping is set; a failure is logged and waits its turn."""
    while not stopping.is_set():
        try:
            await action()
        except Exception as exc:
            structlog.get_logger(__name__).error(f"{what} failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_s)


@dataclass(frozen=True)
class Service:
    """A service's settings, broker (with its handlers), database and read API."""

    settings: ServiceSettings
    broker: KafkaBroker
    db: Database
    metrics: Metrics
    api_routers: Sequence[APIRouter] = field(default_factory=tuple)
    workers: Sequence[Worker] = field(default_factory=tuple)
