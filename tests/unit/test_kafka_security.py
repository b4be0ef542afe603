"""The DEPLOYSTREAM_KAFKA_* settings: the same in both services, and passed through to
confluent-kafka (librdkafka) and to faust (aiokafka)."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from deploystream.kafka.tls import generate_tls
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from streams.kafka_security import faust_credentials
from streams.settings import WorkerSettings

SASL_SSL = {
    "kafka_bootstrap": "broker-1:9093,broker-2:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "svc",
    "kafka_sasl_password": "pw-0123456789",
}


def kafka_fields(settings: type[GatewaySettings] | type[WorkerSettings]) -> dict[str, object]:
    return {
        name: (str(field.annotation), field.default)
        for name, field in settings.model_fields.items()
        if name.startswith("kafka_") or name == "max_record_bytes"
    }


def test_both_services_read_the_same_kafka_settings() -> None:
    gateway, worker = kafka_fields(GatewaySettings), kafka_fields(WorkerSettings)
    assert gateway == worker
    assert {"kafka_security_protocol", "kafka_sasl_password", "kafka_ssl_ca_file"} <= set(gateway)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        SASL_SSL,
        {**SASL_SSL, "kafka_ssl_ca_file": "/etc/kafka/ca.pem"},
        {
            "kafka_security_protocol": "SSL",
            "kafka_ssl_cert_file": "c.pem",
            "kafka_ssl_key_file": "k",
        },
        {**SASL_SSL, "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"},
    ],
)
def test_both_services_give_librdkafka_the_same_options(settings: dict[str, str]) -> None:
    gateway = GatewaySettings(**settings).librdkafka_config()  # type: ignore[arg-type]
    worker = WorkerSettings(**settings).librdkafka_config()  # type: ignore[arg-type]
    assert gateway == worker


def test_sasl_ssl_options_in_librdkafka_terms() -> None:
    config = WorkerSettings(**SASL_SSL, kafka_ssl_ca_file=Path("/ca.pem")).librdkafka_config()  # type: ignore[arg-type]
    assert config == {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw-0123456789",
        "ssl.ca.location": "/ca.pem",
    }


def test_plaintext_is_the_default_and_carries_no_credentials() -> None:
    config = GatewaySettings().librdkafka_config()
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "plaintext"}


def test_the_gateway_producer_uses_the_security_options_and_the_record_limit() -> None:
    config = producer_config(GatewaySettings(**SASL_SSL, max_record_bytes=2_000_000))  # type: ignore[arg-type]
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.username"] == "svc"
    assert config["message.max.bytes"] == 2_000_000


def test_the_password_never_appears_in_the_settings_repr() -> None:
    for settings in (GatewaySettings, WorkerSettings):
        assert "pw-0123456789" not in repr(settings(**SASL_SSL))  # type: ignore[arg-type]


def test_faust_gets_no_credentials_for_plaintext() -> None:
    assert faust_credentials(WorkerSettings()) is None


def test_faust_gets_scram_over_tls_trusting_the_configured_ca(tmp_path: Path) -> None:
    tls = generate_tls(tmp_path)
    credentials = faust_credentials(WorkerSettings(**SASL_SSL, kafka_ssl_ca_file=tls.ca))  # type: ignore[arg-type]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("svc", "pw-0123456789")
    context = credentials.ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any(cert["subject"] for cert in context.get_ca_certs())


def test_faust_gets_a_client_certificate_for_mutual_tls(tmp_path: Path) -> None:
    tls = generate_tls(tmp_path)
    credentials = faust_credentials(
        WorkerSettings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=tls.ca,
            kafka_ssl_cert_file=tls.broker,
            kafka_ssl_key_file=tls.broker,
        )
    )
    assert isinstance(credentials, faust.SSLCredentials)


def test_the_worker_app_hands_the_credentials_to_faust(tmp_path: Path) -> None:
    from streams.app import create_app  # noqa: PLC0415
    from tests.unit.offline_codecs import offline_worker_codecs  # noqa: PLC0415

    tls = generate_tls(tmp_path / "tls")
    settings = WorkerSettings(**SASL_SSL, kafka_ssl_ca_file=tls.ca, data_dir=tmp_path / "w")  # type: ignore[arg-type]
    credentials = create_app(settings, offline_worker_codecs()).conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc"
