"""Settings every service shares; each service subclasses with its own env prefix."""

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import TOPICS

REDELIVERABLE_FOR = timedelta(milliseconds=max(max(t.retention_ms, t.dlq_retention_ms) for t in TOPICS))
"""The longest any topic or dead-letter topic keeps an event: a handled id is kept at least so long."""


class ServiceSettings(BaseSettings):
    """Broker, database, HTTP and logging settings, read from `<PREFIX>_*` variables."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(description="Service name: consumer group, client id, schema")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # Real Kafka supports idempotent producers; the local Tansu broker rejects them.
    kafka_enable_idempotence: bool = True

    database_url: SecretStr = SecretStr("postgresql://127.0.0.1:5433/pricestream")
    db_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)

    consumer_max_attempts: int = Field(default=3, ge=1, description="Tries before a message goes to DLQ")
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    # A batch's statements are a fixed number, and a zone's stores share their price counts' rows
    # only within a batch: 200 took `pricestream bench` from cold from 183,000-199,000 to
    # 225,000-230,000 prices/s against 50 (docs/benchmarks.md). Nothing waits to fill one.
    consumer_max_batch: int = Field(
        default=200, ge=1, description="Most events a batch handler takes in one transaction"
    )
    # aiokafka's default. The local broker makes a joining consumer wait about half of it, and
    # nearly twice it after the group's previous member died or left: the local stack sets less.
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1_500,
        description="How long the broker waits for a silent consumer before handing its partitions on",
    )
    processed_events_keep_days: float = Field(
        default=45.0,
        gt=0,
        description="Days a handled event's id is kept: at least as long as any topic keeps events",
    )
    housekeeping_interval_s: float = Field(default=3600.0, gt=0, description="How often old ids go")
    startup_timeout_s: float = Field(default=60.0, gt=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    shutdown_timeout_s: float = Field(default=20.0, gt=0)

    # Allocations between two collections of the youngest generation (Python's default is 700).
    gc_threshold: int = Field(default=100_000, ge=700)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("processed_events_keep_days")
    @classmethod
    def _outlive_the_topics(cls, days: float) -> float:
        """Refuse to forget an event's id while a topic can still deliver the event again."""
        if timedelta(days=days) < REDELIVERABLE_FOR:
            raise ValueError(
                f"the topics keep events up to {REDELIVERABLE_FOR.days} days: an event delivered "
                "again after its id was forgotten would be applied twice"
            )
        return days

    @property
    def schema_name(self) -> str:
        """Return the PostgreSQL schema the service owns (its name unless overridden)."""
        return self.db_schema or self.service_name

    def redacted(self) -> dict[str, object]:
        """Return the settings as a dict safe to log: secrets masked, DSN password hidden."""
        shown = self.model_dump(mode="json")
        for name, value in shown.items():
            if isinstance(getattr(self, name), SecretStr) and value:
                shown[name] = "**********"
        return shown
