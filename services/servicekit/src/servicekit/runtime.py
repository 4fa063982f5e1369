"""Run a service process: logging, garbage collection, HTTP server, and graceful SIGTERM shutdown."""

import gc

import structlog
import uvicorn

from servicekit.app import build_app
from servicekit.logging import configure_logging
from servicekit.service import Service


def collect_garbage_less_often(threshold: int) -> None:
    """Collect reference cycles every `threshold` allocations, and never look again at what exists now.

    A batch of prices allocates objects by the hundred thousand: decoded events, histories,
    segments. At Python's default (a collection every 700 allocations, an older generation every
    10 of those) the collector kept walking them all, and took over half of bargains' CPU in a
    50-event batch. What start-up allocated (modules, settings, the app) lives as long as the
    process, so it is frozen out of every collection.
    """
    gc.freeze()
    # The older generations keep Python's defaults: one collection per 10 of the younger one.
    gc.set_threshold(threshold, 10, 10)


def run(service: Service) -> None:
    """Serve the service until SIGTERM or SIGINT, then drain and exit."""
    settings = service.settings
    configure_logging(service=settings.service_name, level=settings.log_level, fmt=settings.log_format)
    structlog.get_logger(__name__).info("starting", settings=settings.redacted())
    config = uvicorn.Config(
        build_app(service),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep structlog's handlers
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    collect_garbage_less_often(settings.gc_threshold)  # once the app is built: it is frozen too
    # uvicorn turns SIGTERM into a graceful exit that runs the lifespan shutdown.
    uvicorn.Server(config).run()
