"""Settings of the bargains service, read from `BARGAINS_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class BargainsSettings(ServiceSettings):
    """The bargains service's settings."""

    model_config = SettingsConfigDict(env_prefix="BARGAINS_", extra="ignore", frozen=True)

    service_name: str = "bargains"
    http_port: int = 8084
