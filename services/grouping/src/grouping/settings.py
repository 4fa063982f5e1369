"""Settings of the grouping service, read from `GROUPING_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class GroupingSettings(ServiceSettings):
    """The grouping service's settings."""

    model_config = SettingsConfigDict(env_prefix="GROUPING_", extra="ignore", frozen=True)

    service_name: str = "grouping"
    http_port: int = 8082
