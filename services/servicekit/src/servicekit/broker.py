"""The KafkaBroker factory: one place that turns settings into a configured broker."""

import logging
import ssl
from collections.abc import Sequence
from typing import Any

import aiokafka.client
from aiokafka.protocol.metadata import MetadataRequest
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from servicekit.settings import ServiceSettings


def make_security(settings: ServiceSettings) -> BaseSecurity | None:
    """Build TLS and SASL options from settings; None means plaintext without auth."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context: ssl.SSLContext | None = None
    if use_ssl:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not (settings.kafka_sasl_mechanism and settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise ValueError(
            f"{protocol} needs kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password"
        )
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return sasl[settings.kafka_sasl_mechanism](user, password, ssl_context=context, use_ssl=use_ssl)


def _metadata_request(topics: list[str] | None = None) -> Any:
    """Build the metadata request aiokafka's client sends, asking that no topic it names be created."""
    return MetadataRequest(topics, allow_auto_topic_creation=False)


def refuse_topic_auto_creation() -> None:
    """Make every aiokafka client of this process ask, in each metadata request, that no topic be created.

    FastStream's `allow_auto_create_topics=False` stops only its own admin client: aiokafka still
    asks for a missing topic to be created whenever it names one. A broker that obliges (the local
    one cannot be told not to) then creates a topic with its default partition count. After the
    local broker restarted empty, a reconnecting consumer did so before the operator's topics
    existed again, and prices.scraped.v1 came back with 4 partitions instead of 6.
    """
    setattr(aiokafka.client, "MetadataRequest", _metadata_request)  # noqa: B010


def make_broker(settings: ServiceSettings, *, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """Create the service's KafkaBroker (not yet connected); its clients never create a topic."""
    refuse_topic_auto_creation()
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        enable_idempotence=settings.kafka_enable_idempotence,
        acks="all",
        security=make_security(settings),
        middlewares=middlewares,
        # Topics come from the registry; a typo must fail, not create a new topic.
        allow_auto_create_topics=False,
        description=f"pricestream {settings.service_name}",
        # A plain stdlib logger: its records go through the structlog renderer.
        logger=logging.getLogger("faststream"),
    )
