"""What /metrics measures beyond counters: HTTP requests, outbox rows waiting, consumer lag."""

import asyncio
import time
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.metrics import Metrics
from servicekit.service import Service

log = structlog.get_logger(__name__)

UNMATCHED = "<unmatched>"
"""The route label of requests no route answered: raw paths would make a label per URL."""


class HttpMetrics:
    """ASGI middleware counting requests and timing them by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router writes the matched route into the scope; its template bounds the labels.
            route: Any = scope.get("route")
            template = str(getattr(route, "path", UNMATCHED)) if route is not None else UNMATCHED
            method = str(scope.get("method", ""))
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_seconds.labels(method, template).observe(time.perf_counter() - started)


async def refresh_gauges(service: Service, *, timeout_s: float) -> None:
    """Set the outbox and consumer lag gauges from the database and the consumers, within a timeout."""
    await asyncio.gather(
        _refresh_outbox(service, timeout_s=timeout_s), _refresh_lag(service, timeout_s=timeout_s)
    )


async def _refresh_outbox(service: Service, *, timeout_s: float) -> None:
    """Count the outbox rows waiting for the relay; keep the last count while the database is away."""
    try:
        waiting = await asyncio.wait_for(service.db.pool.fetchval("SELECT count(*) FROM outbox"), timeout_s)
    except Exception as exc:
        log.debug("outbox count unavailable", error=str(exc))
        return
    service.metrics.outbox_waiting.set(int(waiting))


async def _refresh_lag(service: Service, *, timeout_s: float) -> None:
    """Set each assigned partition's lag: its high watermark minus the consumer's position."""
    lags: dict[tuple[str, int], int] = {}
    for subscriber in service.broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if isinstance(consumer, AIOKafkaConsumer):
            lags.update(await _lag_of(consumer, timeout_s=timeout_s))
    gauge = service.metrics.consumer_lag
    # Partitions this process no longer holds (a rebalance moved them) drop out of the series.
    gauge.clear()
    for (topic, partition), lag in sorted(lags.items()):
        gauge.labels(topic, str(partition)).set(lag)


async def _lag_of(consumer: AIOKafkaConsumer, *, timeout_s: float) -> dict[tuple[str, int], int]:
    """Return the lag of each partition a consumer holds whose high watermark it has seen."""
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:  # nothing fetched from it yet
            continue
        try:
            position = await asyncio.wait_for(consumer.position(tp), timeout_s)
        except Exception:  # being reassigned, or no position yet: no figure this time
            continue
        lags[(tp.topic, tp.partition)] = max(highwater - position, 0)
    return lags
