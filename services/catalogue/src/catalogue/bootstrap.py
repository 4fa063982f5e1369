"""Assemble the catalogue service from its settings: broker, handlers, read API."""

from datetime import timedelta
from importlib.resources import files
from pathlib import Path

from catalogue.api import build_api
from catalogue.domain.throttle import Limit
from catalogue.handlers import build_router
from catalogue.queries import CatalogueQueries
from catalogue.repository import PostgresCatalogueRepository
from catalogue.settings import CatalogueSettings
from catalogue.throttling import Throttle
from catalogue.web import build_web
from servicekit.clock import Clock, utc_now
from servicekit.consuming import ConsumerGroup
from servicekit.db import Database
from servicekit.kit import declare_publishers, make_parts
from servicekit.service import Service
from servicekit.unit_of_work import unit_of_work_factory

MIGRATIONS = Path(str(files("catalogue") / "migrations"))


def throttle_from(settings: CatalogueSettings, db: Database) -> Throttle:
    """Build the throttle from settings; tokens are looked up in the catalogue's database."""

    async def lookup(token: str) -> str | None:
        async with db.pool.acquire() as conn:
            return await CatalogueQueries(conn, fresh_after=utc_now()).token_name(token)

    def limit(per_minute: float) -> Limit:
        return Limit(per_minute=per_minute, burst=max(1.0, per_minute * settings.burst_minutes))

    return Throttle(
        anonymous=limit(settings.anonymous_requests_per_minute),
        token=limit(settings.token_requests_per_minute),
        lookup=lookup,
    )


def bootstrap(settings: CatalogueSettings, *, clock: Clock = utc_now) -> Service:
    """Wire the catalogue service; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    uow = unit_of_work_factory(db, PostgresCatalogueRepository)
    broker.include_router(
        build_router(
            uow=uow,
            consumers=ConsumerGroup.of(settings),
        )
    )
    declare_publishers(broker, settings.service_name)
    api = build_api(
        db=db,
        clock=clock,
        freshness=timedelta(days=settings.freshness_days),
        throttle=throttle_from(settings, db),
        page_max=settings.export_page_max,
    )
    web = build_web(db=db, clock=clock, settings=settings, metrics=metrics)
    return Service(settings=settings, broker=broker, db=db, metrics=metrics, api_routers=(api, web))
