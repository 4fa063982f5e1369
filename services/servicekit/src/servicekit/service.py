"""What a service is made of, assembled by its bootstrap and run by servicekit."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter
from faststream.kafka import KafkaBroker

from servicekit.db import Database
from servicekit.metrics import Metrics
from servicekit.settings import ServiceSettings


@dataclass(frozen=True)
class Service:
    """A service's settings, broker (with its handlers), database and read API."""

    settings: ServiceSettings
    broker: KafkaBroker
    db: Database
    metrics: Metrics
    api_routers: Sequence[APIRouter] = field(default_factory=tuple)
