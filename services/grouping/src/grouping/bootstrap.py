"""Assemble the grouping service from its settings: broker, handlers, cycle worker, API."""

from importlib.resources import files
from pathlib import Path

from grouping.api import build_api
from grouping.handlers import build_router
from grouping.queries import GroupingQueries
from grouping.repository import PostgresGroupingRepository
from grouping.settings import GroupingSettings
from grouping.workers import GroupingGauges, GroupingWorker
from servicekit.clock import Clock, utc_now
from servicekit.consuming import ConsumerGroup
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service
from servicekit.unit_of_work import unit_of_work_factory

MIGRATIONS = Path(str(files("grouping") / "migrations"))


def bootstrap(settings: GroupingSettings, *, clock: Clock = utc_now) -> Service:
    """Wire the grouping service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    uow = unit_of_work_factory(db, PostgresGroupingRepository)
    queries = GroupingQueries(db)
    broker.include_router(
        build_router(
            uow=uow,
            clock=clock,
            consumers=ConsumerGroup.of(settings),
            policy=settings.policy(),
        )
    )
    declare_publishers(broker, settings.service_name)
    worker = GroupingWorker(
        uow=uow,
        counts=queries.counts,
        gauges=GroupingGauges.register(metrics.registry),
        policy=settings.policy(),
        every_s=settings.cycle_s,
        clock=clock,
    )
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(queries=queries),),
        workers=(worker, OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )
