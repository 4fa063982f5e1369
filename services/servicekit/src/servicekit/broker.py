"""The KafkaBroker factory: one place that turns settings into a configured broker."""

import logging
import ssl
from collections.abc import Sequence
from typing import Any

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


def make_broker(settings: ServiceSettings, *, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """Create the service's KafkaBroker (not yet connected)."""
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
