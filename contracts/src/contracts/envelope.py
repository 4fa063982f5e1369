"""The envelope every event carries, and the base class of all events."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.types import UtcDatetime

ProducerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class Contract(BaseModel):
    """Base of every contract model: frozen, strict, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Event(Contract):
    """An envelope: identity, type, version, time, origin and correlation of an event."""

    event_id: UUID = Field(description="Unique id of this event; consumers deduplicate on it")
    event_type: str = Field(description="Name of the event, also sent as the `event_type` header")
    schema_version: int = Field(description="Major version of the event, also a header")
    occurred_at: UtcDatetime = Field(description="When the producer created the event (UTC)")
    producer: ProducerName = Field(description="Service or tool that produced the event")
    correlation_id: UUID = Field(description="Id shared by all events caused by one request")

    # Each concrete event pins these; the registry and codec read them from the class.
    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]

    @classmethod
    def new(cls, *, producer: str, correlation_id: UUID | None = None, **fields: Any) -> Self:
        """Create an event with a fresh id and the current time."""
        event_id = uuid4()
        return cls.model_validate(
            {
                "event_id": event_id,
                "event_type": cls.EVENT_TYPE,
                "schema_version": cls.SCHEMA_VERSION,
                "occurred_at": datetime.now(UTC),
                "producer": producer,
                "correlation_id": correlation_id or event_id,
                **fields,
            }
        )

    def partition_key(self) -> str:
        """Return the Kafka key that keeps related events on one partition."""
        raise NotImplementedError
