"""Settings of the catalogue service, read from `CATALOGUE_*` environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class CatalogueSettings(ServiceSettings):
    """The catalogue service's settings."""

    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", extra="ignore", frozen=True)

    service_name: str = "catalogue"
    http_port: int = 8085

    freshness_days: float = Field(default=7.0, gt=0, description="Only prices this recent are answered")
    anonymous_requests_per_minute: float = Field(
        default=120.0, gt=0, description="Rate limit of a client without a token, per client address"
    )
    token_requests_per_minute: float = Field(
        default=6000.0, gt=0, description="Rate limit of a client with a Bearer token, per token"
    )
    burst_minutes: float = Field(
        default=0.25, gt=0, description="How much of a minute's allowance a client may spend at once"
    )
    export_page_max: int = Field(default=10_000, ge=1, description="Largest page the export serves")

    # The web page's operators' views read the other services over HTTP (never their tables).
    scraper_url: str = Field(default="http://127.0.0.1:8081", description="Scrape runs, health, metrics")
    grouping_url: str = Field(default="http://127.0.0.1:8082", description="Group times, prices held")
    substitutions_url: str = Field(default="http://127.0.0.1:8083", description="Health, metrics")
    bargains_url: str = Field(default="http://127.0.0.1:8084", description="Illusory discounts, health")
    services_timeout_s: float = Field(default=2.0, gt=0, description="How long a page waits on a service")
    flags_ttl_s: float = Field(default=15.0, ge=0, description="How long illusory flags are reused by pages")
