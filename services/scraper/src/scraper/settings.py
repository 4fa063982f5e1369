"""Settings of the scraper service, read from `SCRAPER_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ScraperSettings(ServiceSettings):
    """The scraper service's settings."""

    model_config = SettingsConfigDict(env_prefix="SCRAPER_", extra="ignore", frozen=True)

    service_name: str = "scraper"
    http_port: int = 8081

    storefront_url: str = "http://127.0.0.1:8090"
    dialects: dict[str, Literal["simulator", "coles", "woolworths"]] = Field(
        default_factory=dict,
        description='Each chain\'s web API, as JSON: {"coles": "coles"}; unnamed chains use the storefront',
    )
    chain_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Each chain's site, as JSON; default the real site of its dialect",
    )
    user_agent: str = "pricestream-scraper/0.1 (grocery price research; respects Retry-After)"
    fetch_concurrency_per_host: int = Field(default=8, ge=1)
    fetch_rate_per_host: float = Field(default=200.0, gt=0, description="Requests per second per host")
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    fetch_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Fail fast when a host is unreachable"
    )
    fetch_max_attempts: int = Field(default=8, ge=1)
    fetch_backoff_base_s: float = Field(default=0.1, ge=0)
    fetch_backoff_max_s: float = Field(default=10.0, ge=0)
    host_pause_after_failures: int = Field(
        default=20, ge=1, description="Consecutive failures that pause a host"
    )
    host_pause_s: float = Field(default=30.0, ge=0)

    run_workers: int = Field(default=8, ge=1, description="Pages fetched and staged concurrently")
    anchor_interval_h: float = Field(default=24.0, gt=0)
    member_check_interval_h: float = Field(default=168.0, gt=0)
    member_sample_share: float = Field(default=0.1, ge=0, le=1)
    auto_scrape_interval_s: float = Field(default=0.0, ge=0, description="0: scrape only when asked")
    rescrape_poll_s: float = Field(default=5.0, gt=0, description="How often pending re-scrapes are served")
    runs_keep_days: float = Field(default=30.0, gt=0, description="Days an ended run and its pages are kept")
    quarantine_keep_days: float = Field(default=90.0, gt=0, description="Days a rejected row is kept")

    ingest_token: SecretStr | None = Field(default=None, description="Bearer token of POST /v1/observations")
    ingest_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    ingest_max_rows: int = Field(default=10_000, ge=1)

    category_map: Path | None = Field(
        default=None,
        description="CSV mapping chain categories onto the shared tree (None: the packaged one)",
    )
