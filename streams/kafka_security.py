"""The ``DEPLOYSTREAM_KAFKA_*`` security settings in faust's (aiokafka's) terms.

confluent-kafka clients take :meth:`WorkerSettings.librdkafka_config` as it is; faust wants
credentials objects and an ``ssl.SSLContext`` instead.
"""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from streams.settings import WorkerSettings

__all__ = ["faust_credentials"]


def _ssl_context(settings: WorkerSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
    )
    if settings.kafka_ssl_cert_file is not None:
        context.load_cert_chain(
            str(settings.kafka_ssl_cert_file),
            str(settings.kafka_ssl_key_file) if settings.kafka_ssl_key_file else None,
        )
    return context


def faust_credentials(settings: WorkerSettings) -> CredentialsT | None:
    """faust's ``broker_credentials`` for the settings; ``None`` for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )
