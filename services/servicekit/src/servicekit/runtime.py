"""Run a service process: logging, HTTP server, and graceful SIGTERM shutdown."""

import structlog
import uvicorn

from servicekit.app import build_app
from servicekit.logging import configure_logging
from servicekit.service import Service


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
    # uvicorn turns SIGTERM into a graceful exit that runs the lifespan shutdown.
    uvicorn.Server(config).run()
