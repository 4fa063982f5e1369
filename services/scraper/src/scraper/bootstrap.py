"""Assemble the scraper service from its settings: broker, handlers, fetcher, runner, API."""

from importlib.resources import files
from pathlib import Path

import httpx

from scraper.api import build_api
from scraper.fetching import Fetcher, FetchPolicy
from scraper.handlers import build_router
from scraper.ingestion import Ingestor
from scraper.runs import ScrapeRunner
from scraper.settings import ScraperSettings
from scraper.shop import StorefrontClient
from scraper.telemetry import ScraperCounters
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service

MIGRATIONS = Path(str(files("scraper") / "migrations"))


def bootstrap(settings: ScraperSettings) -> Service:
    """Wire the scraper; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    broker.include_router(build_router(db=db, group_id=settings.service_name))
    declare_publishers(broker, settings.service_name)
    counters = ScraperCounters.register(metrics.registry)
    policy = FetchPolicy(
        concurrency=settings.fetch_concurrency_per_host,
        rate_per_s=settings.fetch_rate_per_host,
        timeout_s=settings.fetch_timeout_s,
        max_attempts=settings.fetch_max_attempts,
        backoff_base_s=settings.fetch_backoff_base_s,
        backoff_max_s=settings.fetch_backoff_max_s,
        pause_after_failures=settings.host_pause_after_failures,
        pause_s=settings.host_pause_s,
    )
    client = httpx.AsyncClient(headers={"User-Agent": settings.user_agent})
    fetcher = Fetcher(client, policy, on_retry=lambda reason: counters.retries.labels(reason).inc())
    runner = ScrapeRunner(
        db=db, shop=StorefrontClient(fetcher, settings.storefront_url), settings=settings, counters=counters
    )
    ingestor = Ingestor(db=db, counters=counters)
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db, runner=runner, ingestor=ingestor, settings=settings),),
        workers=(runner, OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )
