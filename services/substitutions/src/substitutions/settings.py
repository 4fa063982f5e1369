"""Settings of the substitutions service, read from `SUBSTITUTIONS_*` environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings
from substitutions.domain.matching import Policy

_DEFAULT = Policy()


class SubstitutionsSettings(ServiceSettings):
    """The substitutions service's settings."""

    model_config = SettingsConfigDict(env_prefix="SUBSTITUTIONS_", extra="ignore", frozen=True)

    service_name: str = "substitutions"
    http_port: int = 8083
    encode_batch_size: int = 256
    torch_threads: int | None = None
    relearn_from: int = Field(default=100, ge=0)
    """Rebuild, learning house brands and distinguishing words again, once the catalogue has
    doubled since it last learned and holds at least this many products (0: never)."""
    relearn_quiet_s: float = Field(default=5.0, gt=0)
    """Learn from the products that came since the last learning once none has come for this long."""
    l2_min_score: float = _DEFAULT.l2_min_score
    l3_min_similarity: float = _DEFAULT.l3_min_similarity
    l4_min_similarity: float = _DEFAULT.l4_min_similarity


def policy_from(settings: SubstitutionsSettings) -> Policy:
    """Make the matching policy from the settings."""
    return Policy(
        l2_min_score=settings.l2_min_score,
        l3_min_similarity=settings.l3_min_similarity,
        l4_min_similarity=settings.l4_min_similarity,
    )
