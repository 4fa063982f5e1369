"""Assemble the parts every service has: metrics, consume guard, broker, database."""

from pathlib import Path

from faststream.kafka import KafkaBroker

from contracts import produced_by
from servicekit.broker import make_broker
from servicekit.consuming import ConsumeGuard
from servicekit.db import Database
from servicekit.metrics import Metrics
from servicekit.settings import ServiceSettings


def make_parts(settings: ServiceSettings, *, migrations: Path) -> tuple[KafkaBroker, Database, Metrics]:
    """Create the broker (guarded by retries and DLQ), the database and the metrics."""
    metrics = Metrics()
    guard = ConsumeGuard(
        metrics=metrics,
        group_id=settings.service_name,
        max_attempts=settings.consumer_max_attempts,
        backoff_s=settings.consumer_retry_backoff_s,
    )
    broker = make_broker(settings, middlewares=[guard.middleware])
    return broker, Database(settings, migrations), metrics


def declare_publishers(broker: KafkaBroker, service_name: str) -> None:
    """Declare the topics the registry says the service produces, for its AsyncAPI document."""
    for spec in produced_by(service_name):
        broker.publisher(spec.name, schema=spec.event, description=spec.description)
