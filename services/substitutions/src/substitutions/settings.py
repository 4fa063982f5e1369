"""Settings of the substitutions service, read from `SUBSTITUTIONS_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class SubstitutionsSettings(ServiceSettings):
    """The substitutions service's settings."""

    model_config = SettingsConfigDict(env_prefix="SUBSTITUTIONS_", extra="ignore", frozen=True)

    service_name: str = "substitutions"
    http_port: int = 8083
