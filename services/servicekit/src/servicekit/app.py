"""The HTTP side of a service: health, metrics, AsyncAPI, and the service's read API."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.specification import AsyncAPI

from servicekit.housekeeping import ProcessedEventsPruner
from servicekit.observability import HttpMetrics, refresh_gauges
from servicekit.service import Service

log = structlog.get_logger(__name__)


async def _retry_until(what: str, action: Any, timeout_s: float) -> None:
    """Retry an async start-up step with backoff until it succeeds or time runs out."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            await action()
            return
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("start-up step failed, retrying", step=what, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _start_broker(service: Service) -> None:
    """Connect, then start every subscriber at once.

    FastStream starts subscribers one after another, and each consumer joining the service's
    group makes the ones before it rejoin: a service with four subscribers took 30 s to start
    on the local broker. Started together, they join in one round.
    """
    broker = service.broker
    try:
        await broker.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in broker.subscribers))
        for publisher in broker.publishers:
            await publisher.start()
        broker.running = True
    except Exception:
        with contextlib.suppress(Exception):
            await service.broker.stop()
        raise


def build_app(service: Service) -> FastAPI:
    """Create the ASGI app whose lifespan connects, migrates, consumes and drains."""
    app = FastAPI(
        title=f"pricestream {service.settings.service_name}", lifespan=_lifespan(service), docs_url="/docs"
    )
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_middleware(HttpMetrics, metrics=service.metrics)
    app.include_router(_health_router(service))
    for router in service.api_routers:
        app.include_router(router)
    return app


def _lifespan(service: Service) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Return the lifespan: connect and migrate, start the broker and workers; drain on the way out."""
    settings = service.settings

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _retry_until("database", service.db.connect, settings.startup_timeout_s)
        applied = await service.db.migrate()
        log.info("migrations applied", schema=service.db.schema, applied=[m.version for m in applied])
        await _retry_until("broker", lambda: _start_broker(service), settings.startup_timeout_s)
        stopping = asyncio.Event()
        pruner = ProcessedEventsPruner(
            service.db,
            keep=timedelta(days=settings.processed_events_keep_days),
            every_s=settings.housekeeping_interval_s,
        )
        workers = [*service.workers, pruner]
        tasks = [asyncio.create_task(w.run(stopping), name=w.name) for w in workers]
        log.info("service started", http=f"http://{settings.http_host}:{settings.http_port}")
        try:
            yield
        finally:
            # Workers finish what is in flight (a page, an outbox batch) before the broker goes.
            stopping.set()
            if tasks:
                _done, late = await asyncio.wait(tasks, timeout=settings.shutdown_timeout_s)
                for task in late:
                    task.cancel()
            # FastStream stops fetching, waits for in-flight handlers, then commits.
            await service.broker.stop()
            await service.db.close()
            log.info("service stopped")

    return lifespan


async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer bad parameters with 400 and what is wrong with each."""
    problems = [
        {"where": ".".join(str(p) for p in error["loc"]), "problem": error["msg"]} for error in exc.errors()
    ]
    return JSONResponse({"detail": problems}, status_code=400)


def _health_router(service: Service) -> APIRouter:
    """Return the routes every service has: liveness, readiness, metrics, AsyncAPI."""
    settings = service.settings
    router = APIRouter()
    asyncapi_json: list[str] = []

    @router.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """Answer while the process runs."""
        return {"status": "live", "service": settings.service_name}

    @router.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        """Answer 200 when the broker and database answer and migrations are applied."""
        timeout = settings.health_timeout_s
        broker_ok, db_checks = await asyncio.gather(_ping_broker(service, timeout), service.db.check(timeout))
        checks = {"broker": broker_ok, **db_checks}
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": settings.service_name, "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        """Expose Prometheus metrics, with the outbox and consumer lag gauges as of now."""
        await refresh_gauges(service, timeout_s=settings.health_timeout_s)
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @router.get("/asyncapi.json", tags=["docs"])
    async def asyncapi() -> Response:
        """Serve the AsyncAPI document of the service's channels, generated by FastStream."""
        if not asyncapi_json:
            spec = AsyncAPI(service.broker, title=f"pricestream {settings.service_name}", version="1.0.0")
            asyncapi_json.append(spec.to_specification().to_json())
        return Response(asyncapi_json[0], media_type="application/json")

    return router


async def _ping_broker(service: Service, timeout: float) -> bool:
    try:
        return await service.broker.ping(timeout)
    except Exception:
        return False
