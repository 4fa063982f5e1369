"""pricestream's event contracts: envelope, v1 events, topic registry, codec, schemas."""

from contracts.codec import CODEC, Codec, ContractError, Record
from contracts.envelope import Contract, Event
from contracts.registry import SERVICES, TOPICS, TopicSpec, consumed_by, produced_by, topic, topic_for

__all__ = [
    "CODEC",
    "SERVICES",
    "TOPICS",
    "Codec",
    "Contract",
    "ContractError",
    "Event",
    "Record",
    "TopicSpec",
    "consumed_by",
    "produced_by",
    "topic",
    "topic_for",
]
