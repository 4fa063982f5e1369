"""Assemble the grouping service from its settings: broker, handlers, cycle worker, API."""

from importlib.resources import files
from pathlib import Path

from grouping.api import build_api
from grouping.handlers import build_router
from grouping.settings import GroupingSettings
from grouping.worker import GroupingGauges, GroupingWorker
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service

MIGRATIONS = Path(str(files("grouping") / "migrations"))


def bootstrap(settings: GroupingSettings) -> Service:
    """Wire the grouping service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    broker.include_router(
        build_router(db=db, group_id=settings.service_name, max_batch=settings.consumer_max_batch)
    )
    declare_publishers(broker, settings.service_name)
    worker = GroupingWorker(db=db, settings=settings, gauges=GroupingGauges.register(metrics.registry))
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db),),
        workers=(worker, OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )
