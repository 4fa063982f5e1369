"""Settings of the grouping service, read from `GROUPING_*` environment variables."""

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from grouping.domain.policy import GroupingPolicy
from servicekit.settings import ServiceSettings


class GroupingSettings(ServiceSettings):
    """The grouping service's settings."""

    model_config = SettingsConfigDict(env_prefix="GROUPING_", extra="ignore", frozen=True)

    service_name: str = "grouping"
    http_port: int = 8082

    min_share: float = Field(default=0.98, gt=0, le=1, description="Share of equal prices that makes a match")
    min_common: int = Field(default=50, ge=1, description="Common products needed to compare two stores")
    anchor_moved_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of an anchor's prices changed in one scrape that re-checks its members",
    )
    freshness_h: float = Field(default=168.0, gt=0, description="Prices older than this do not count")
    anchor_lag_h: float = Field(
        default=24.0, gt=0, description="An anchor this much older than its member's new prices is stale"
    )
    quiet_s: float = Field(
        default=2.0, ge=0, description="Wait after a store's last prices before judging it"
    )
    regroup_busy_every_s: float = Field(
        default=60.0, gt=0, description="Regroup a chain whose prices never pause at least this often"
    )
    cycle_s: float = Field(default=1.0, gt=0, description="How often groups are updated")

    def policy(self) -> GroupingPolicy:
        """Return the rules and timings the grouping cycle judges by."""
        return GroupingPolicy(
            min_share=self.min_share,
            min_common=self.min_common,
            anchor_moved_share=self.anchor_moved_share,
            freshness=timedelta(hours=self.freshness_h),
            anchor_lag=timedelta(hours=self.anchor_lag_h),
            quiet=timedelta(seconds=self.quiet_s),
            regroup_busy_every=timedelta(seconds=self.regroup_busy_every_s),
        )
