"""Prometheus metrics every service exposes, in a registry of its own."""

from collections import Counter as CounterType

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from servicekit.local_http import local_http


class Metrics:
    """Counters and histograms of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.consumed = Counter(
            "pricestream_messages_consumed", "Messages received, by topic", ["topic"], registry=self.registry
        )
        self.processed = Counter(
            "pricestream_messages_processed",
            "Messages handled successfully",
            ["topic"],
            registry=self.registry,
        )
        self.failed = Counter(
            "pricestream_messages_failed",
            "Handling attempts that failed, by topic and reason",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "pricestream_messages_dead_lettered",
            "Messages sent to the DLQ",
            ["topic"],
            registry=self.registry,
        )
        self.published = Counter(
            "pricestream_messages_published",
            "Events published from the outbox",
            ["topic"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "pricestream_handler_duration_seconds",
            "Time to handle one message, by topic",
            ["topic"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.outbox_waiting = Gauge(
            "pricestream_outbox_waiting", "Outbox rows not yet published", registry=self.registry
        )
        self.consumer_lag = Gauge(
            "pricestream_consumer_lag",
            "Records behind the end of each partition this process consumes (high watermark - position)",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "pricestream_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "pricestream_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        # CPU, memory, open files and start time of this process, as every Prometheus client has them.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render(self) -> bytes:
        """Return the Prometheus text exposition."""
        return generate_latest(self.registry)


def processed_counts(url: str) -> CounterType[str]:
    """Read a service's processed-message counts per topic from its /metrics (empty if it is away)."""
    try:
        return processed_counts_from_text(local_http().get(f"{url}/metrics", timeout=3.0).text)
    except httpx.HTTPError:
        return CounterType()


def processed_counts_from_text(text: str) -> CounterType[str]:
    """Sum the processed-message counters per topic in a Prometheus text exposition."""
    counts: CounterType[str] = CounterType()
    for family in text_string_to_metric_families(text):
        if family.name == "pricestream_messages_processed":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["topic"]] += int(sample.value)
    return counts
