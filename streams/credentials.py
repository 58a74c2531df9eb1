"""Kafka security (TLS, SASL) for the worker's Faust consumer and producer, from IOC_KAFKA_*."""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from models.settings import Settings


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Kafka security from the environment (IOC_KAFKA_*), for Faust's consumer and producer alike.

    Without this the worker connected in PLAINTEXT whatever IOC_KAFKA_SECURITY_PROTOCOL said (only the
    replay producer passed it on). Faust's confluent driver ignores `broker_credentials`, so it is
    refused with security on rather than left to connect without it.
    """
    protocol = settings.kafka_security_protocol.strip().upper() or "PLAINTEXT"
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"IOC_KAFKA_SECURITY_PROTOCOL={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    if settings.faust_transport != "aiokafka":
        raise ValueError(f"IOC_FAUST_TRANSPORT={settings.faust_transport} cannot authenticate to Kafka "
                         f"({protocol}): Faust's confluent driver ignores credentials; use aiokafka")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None) if protocol.endswith("SSL") \
        else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                 mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=context)
