"""Assemble the scraper service from its settings: broker, handlers, fetcher, runner, API."""

from datetime import timedelta
from importlib.resources import files
from pathlib import Path

from scraper.api import build_api
from scraper.category_map import load_category_map
from scraper.chains import coles, woolworths
from scraper.chains.base import ChainAdapter, ChainRouter
from scraper.chains.simulator import StorefrontClient
from scraper.domain.planning import PlanPolicy
from scraper.fetching import Fetcher, FetchPolicy, cookieless_client
from scraper.handlers import build_router
from scraper.queries import ScraperQueries
from scraper.repository import PostgresScraperRepository, ScraperRepository
from scraper.service_layer.housekeeping import Keep
from scraper.service_layer.ingestion import Ingestor
from scraper.service_layer.runs import ScrapeRuns
from scraper.settings import ScraperSettings
from scraper.telemetry import ScraperCounters
from scraper.workers import ScrapeRunner, Tidier
from servicekit.clock import Clock, utc_now
from servicekit.consuming import ConsumerGroup
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service
from servicekit.unit_of_work import UnitOfWorkFactory, unit_of_work_factory

MIGRATIONS = Path(str(files("scraper") / "migrations"))


def bootstrap(settings: ScraperSettings, *, clock: Clock = utc_now) -> Service:
    """Wire the scraper; nothing connects until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    uow: UnitOfWorkFactory[ScraperRepository] = unit_of_work_factory(db, PostgresScraperRepository)
    broker.include_router(
        build_router(
            uow=uow,
            consumers=ConsumerGroup.of(settings),
        )
    )
    declare_publishers(broker, settings.service_name)
    counters = ScraperCounters.register(metrics.registry)
    categories = load_category_map(settings.category_map)
    fetcher = Fetcher(
        cookieless_client(settings.user_agent),
        _fetch_policy(settings),
        on_retry=lambda reason: counters.retries.labels(reason).inc(),
    )
    runs = ScrapeRuns(
        uow=uow,
        shop=chain_router(settings, fetcher, counters),
        policy=PlanPolicy(
            anchor_interval=timedelta(hours=settings.anchor_interval_h),
            member_check_interval=timedelta(hours=settings.member_check_interval_h),
            member_sample_share=settings.member_sample_share,
        ),
        counters=counters,
        categories=categories,
    )
    runner = ScrapeRunner(
        runs=runs,
        clock=clock,
        workers=settings.run_workers,
        poll_s=settings.rescrape_poll_s,
        auto_interval_s=settings.auto_scrape_interval_s,
        fetch_stats=fetcher.stats,
    )
    keep = Keep(
        runs=timedelta(days=settings.runs_keep_days), quarantine=timedelta(days=settings.quarantine_keep_days)
    )
    tidier = Tidier(uow=uow, clock=clock, keep=keep, every_s=settings.housekeeping_interval_s)
    api = build_api(
        queries=ScraperQueries(db),
        runner=runner,
        ingestor=Ingestor(uow=uow, counters=counters, categories=categories),
        settings=settings,
        clock=clock,
    )
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(api,),
        workers=(runner, tidier, OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )


def chain_router(settings: ScraperSettings, fetcher: Fetcher, counters: ScraperCounters) -> ChainRouter:
    """Return the shop the scraper reads: each chain through its dialect's adapter."""
    adapters: dict[str, ChainAdapter] = {}
    for chain, dialect in settings.dialects.items():
        site = settings.chain_urls.get(chain)
        if dialect == "coles":
            adapters[chain] = coles.ColesAdapter(fetcher, site or coles.SITE)
        elif dialect == "woolworths":
            adapters[chain] = woolworths.WoolworthsAdapter(fetcher, site or woolworths.SITE)
    return ChainRouter(
        storefront=StorefrontClient(fetcher, settings.storefront_url),
        adapters=adapters,
        fetcher=fetcher,
        defences=counters.defences,
    )


def _fetch_policy(settings: ScraperSettings) -> FetchPolicy:
    """Return the fetcher's per-host limits and retry rules from the settings."""
    return FetchPolicy(
        concurrency=settings.fetch_concurrency_per_host,
        rate_per_s=settings.fetch_rate_per_host,
        timeout_s=settings.fetch_timeout_s,
        connect_timeout_s=settings.fetch_connect_timeout_s,
        max_attempts=settings.fetch_max_attempts,
        backoff_base_s=settings.fetch_backoff_base_s,
        backoff_max_s=settings.fetch_backoff_max_s,
        pause_after_failures=settings.host_pause_after_failures,
        pause_s=settings.host_pause_s,
    )
