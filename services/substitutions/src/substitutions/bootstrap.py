"""Assemble the substitutions service from its settings: broker, handlers, database, API."""

from importlib.resources import files
from pathlib import Path

from servicekit.kit import declare_publishers, make_parts
from servicekit.service import Service
from substitutions.handlers import build_router
from substitutions.settings import SubstitutionsSettings

MIGRATIONS = Path(str(files("substitutions") / "migrations"))


def bootstrap(settings: SubstitutionsSettings) -> Service:
    """Wire the substitutions service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    broker.include_router(build_router(db=db, group_id=settings.service_name))
    declare_publishers(broker, settings.service_name)
    return Service(settings=settings, broker=broker, db=db, metrics=metrics)
