"""Prometheus metrics every service exposes, in a registry of its own."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


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

    def render(self) -> bytes:
        """Return the Prometheus text exposition."""
        return generate_latest(self.registry)
