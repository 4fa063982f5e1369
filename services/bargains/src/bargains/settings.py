"""Settings of the bargains service, read from `BARGAINS_*` environment variables."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bargains.domain.bargains import Policy
from servicekit.settings import ServiceSettings


class BargainsSettings(ServiceSettings):
    """The bargains service's settings."""

    model_config = SettingsConfigDict(env_prefix="BARGAINS_", extra="ignore", frozen=True)

    service_name: str = "bargains"
    http_port: int = 8084

    freshness_days: float = Field(default=7.0, gt=0, description="Only prices this recent count as current")
    reference_days: float = Field(default=28.0, gt=0, description="Period the regular price is judged on")
    min_discount: float = Field(default=0.10, gt=0, lt=1)
    lookback_days: float = Field(default=90.0, gt=0, description="Window of the historical low")
    expiry_check_s: float = Field(default=30.0, gt=0, description="How often stale bargains are expired")
    fast_price_polling: bool = Field(
        default=True,
        description="Poll prices every 50 ms, the hop a shopper waits on; off, the broker's default wait",
    )


def policy_from(settings: BargainsSettings) -> Policy:
    """Build the domain policy from settings."""
    return Policy(
        freshness=timedelta(days=settings.freshness_days),
        reference=timedelta(days=settings.reference_days),
        min_discount=settings.min_discount,
        lookback=timedelta(days=settings.lookback_days),
    )
