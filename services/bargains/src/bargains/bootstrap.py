"""Assemble the bargains service from its settings: broker, handlers, expiry, API."""

from importlib.resources import files
from pathlib import Path

from bargains.api import build_api
from bargains.handlers import build_router
from bargains.recompute import Expirer, Recomputer, policy_from
from bargains.settings import BargainsSettings
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service

MIGRATIONS = Path(str(files("bargains") / "migrations"))


def bootstrap(settings: BargainsSettings) -> Service:
    """Wire the bargains service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    recomputer = Recomputer(policy=policy_from(settings))
    broker.include_router(
        build_router(
            db=db,
            group_id=settings.service_name,
            recomputer=recomputer,
            max_batch=settings.consumer_max_batch,
        )
    )
    declare_publishers(broker, settings.service_name)
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db, settings=settings),),
        workers=(Expirer(db=db, settings=settings), OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )
