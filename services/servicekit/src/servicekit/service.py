"""What a service is made of, assembled by its bootstrap and run by servicekit."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


@dataclass(frozen=True)
class Service:
    """A service's settings, broker (with its handlers), database and read API."""

    settings: ServiceSettings
    broker: KafkaBroker
    db: Database
    metrics: Metrics
    api_routers: Sequence[APIRouter] = field(default_factory=tuple)
    workers: Sequence[Worker] = field(default_factory=tuple)
