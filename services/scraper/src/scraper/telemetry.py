"""The scraper's own Prometheus counters, beside servicekit's consumer metrics."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True, slots=True)
class ScraperCounters:
    """Pages, observations and retries, for /metrics."""

    pages: Counter
    observations: Counter
    retries: Counter
    quarantined: Counter
    defences: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> "ScraperCounters":
        """Create the counters in a service's registry."""
        return cls(
            pages=Counter("scraper_pages", "Category pages fetched and staged", registry=registry),
            observations=Counter("scraper_observations", "Prices staged for publishing", registry=registry),
            retries=Counter(
                "scraper_fetch_retries", "Requests retried, by reason", ["reason"], registry=registry
            ),
            quarantined=Counter(
                "scraper_quarantined", "Rows quarantined, by source", ["source"], registry=registry
            ),
            defences=Counter(
                "scraper_site_defences",
                "Answers refused as a whole, the host paused: by chain and defence "
                "(challenge, build_id, forbidden, rate_limited, empty_page, schema_drift)",
                ["chain", "defence"],
                registry=registry,
            ),
        )
