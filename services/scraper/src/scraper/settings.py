"""Settings of the scraper service, read from `SCRAPER_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ScraperSettings(ServiceSettings):
    """The scraper service's settings."""

    model_config = SettingsConfigDict(env_prefix="SCRAPER_", extra="ignore", frozen=True)

    service_name: str = "scraper"
    http_port: int = 8081
