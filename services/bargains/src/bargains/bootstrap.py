"""Assemble the bargains service from its settings: broker, handlers, expiry, API."""

from datetime import timedelta
from importlib.resources import files
from pathlib import Path

from bargains.api import build_api
from bargains.handlers import build_router
from bargains.repository import PostgresBargainsRepository
from bargains.settings import BargainsSettings, policy_from
from bargains.workers import Expirer
from servicekit.clock import Clock, utc_now
from servicekit.consuming import ConsumerGroup
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service
from servicekit.unit_of_work import unit_of_work_factory

MIGRATIONS = Path(str(files("bargains") / "migrations"))


def bootstrap(settings: BargainsSettings, *, clock: Clock = utc_now) -> Service:
    """Wire the bargains service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    policy = policy_from(settings)
    uow = unit_of_work_factory(db, PostgresBargainsRepository)
    broker.include_router(
        build_router(
            uow=uow,
            clock=clock,
            policy=policy,
            consumers=ConsumerGroup.of(settings),
            fast_price_polling=settings.fast_price_polling,
        )
    )
    declare_publishers(broker, settings.service_name)
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db, freshness=timedelta(days=settings.freshness_days), clock=clock),),
        workers=(
            Expirer(uow=uow, clock=clock, policy=policy, interval_s=settings.expiry_check_s),
            OutboxRelay(db=db, broker=broker, metrics=metrics),
        ),
    )
