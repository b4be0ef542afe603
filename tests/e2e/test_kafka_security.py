"""Kafka with authentication, encryption and ACLs: the stack over SASL_SSL (SCRAM-SHA-512)
against a Maven-jar broker that speaks nothing else and enforces the README's ACLs, and
clients without the right credentials refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from deploystream.kafka.acls import service_acls
from deploystream.kafka.broker import LocalKafka
from deploystream.kafka.jars import ensure_libs
from deploystream.kafka.security import BrokerSecurity
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import Services, StackConfig, start_services
from tests.e2e.conftest import API, SIGNING_KEY, secret_of, write_clients_file
from tests.e2e.test_deployments_api import deployment

LOG = logging.getLogger("refused-clients")
USERS = {
    "admin": "admin-password-0123456789",
    "gateway": "gateway-password-0123456789",
    "worker": "worker-password-0123456789",
}


@dataclass
class SecureStack:
    broker: LocalKafka
    security: BrokerSecurity
    services: Services
    http: httpx.Client

    def client_config(self, user: str | None = None) -> dict[str, str]:
        return self.security.client_config(self.broker.bootstrap, user)


def grant(admin: AdminClient, config: StackConfig) -> None:
    """Create exactly the ACLs ``deploystream kafka-acls`` prints for this stack."""
    acls = service_acls(
        "gateway",
        "worker",
        deployments_topic=config.topic,
        state_topic=config.state_topic,
        dead_letter_topic=f"{config.topic}-dead-letter",
        issues_topic=config.issues_topic,
        app_id=config.app_id,
    )
    bindings = [
        AclBinding(
            ResourceType[acl.resource],
            acl.name,
            ResourcePatternType[acl.pattern],
            acl.principal,
            "*",
            AclOperation[acl.operation],
            AclPermissionType.ALLOW,
        )
        for acl in acls
    ]
    for future in admin.create_acls(bindings).values():
        future.result(30)


@pytest.fixture(scope="module")
def secure(
    schema_registry: ProvidedRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureStack]:
    # The registry keeps its schemas on the session's broker: only worker and gateway use
    # the secured one.
    tmp: Path = tmp_path_factory.mktemp("sasl")
    security = BrokerSecurity(users=USERS, tls_dir=tmp / "tls")
    broker = LocalKafka(ensure_libs(), work_dir=tmp / "kafka", security=security)
    broker.start(timeout=120)
    try:
        kafka = {
            "DEPLOYSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "DEPLOYSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "DEPLOYSTREAM_KAFKA_SSL_CA_FILE": str(tmp / "tls" / "ca.pem"),
        }
        config = StackConfig.in_folder(
            broker.bootstrap,
            schema_registry.url,
            tmp,
            partitions=2,
            topic="secure-deployments",
            app_id="secure-app",
            extra_env={
                **kafka,
                "DEPLOYSTREAM_CLIENTS_FILE": str(write_clients_file(tmp / "clients.yaml")),
                "DEPLOYSTREAM_TOKEN_SIGNING_KEY": SIGNING_KEY,
            },
            worker_env={
                "DEPLOYSTREAM_KAFKA_SASL_USERNAME": "worker",
                "DEPLOYSTREAM_KAFKA_SASL_PASSWORD": USERS["worker"],
            },
            gateway_env={
                "DEPLOYSTREAM_KAFKA_SASL_USERNAME": "gateway",
                "DEPLOYSTREAM_KAFKA_SASL_PASSWORD": USERS["gateway"],
            },
        )
        grant(AdminClient(security.client_config(broker.bootstrap)), config)
        services = start_services(config, worker_timeout=180, gateway_timeout=90)
        http = httpx.Client(
            base_url=services.base_url, timeout=30, auth=("alpha", secret_of("alpha"))
        )
        yield SecureStack(broker, security, services, http)
        http.close()
        services.stop()
    finally:
        broker.stop()


def test_the_stack_writes_and_reads_over_sasl_ssl_with_least_privilege_acls(
    secure: SecureStack,
) -> None:
    response = secure.http.post(f"{API}/bulk", json={"deployments": [deployment(number=5)]})
    assert response.status_code == 202, response.text
    assert len(response.json()["acceptedDeployments"]) == 1
    path = f"{API}/pipelines/web/environments/prod/deployments/5"
    found = secure.http.get(path)
    deadline = time.monotonic() + 60
    while found.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        found = secure.http.get(path)
    assert found.status_code == 200, found.text
    assert secure.http.get("/readyz").status_code == 200


def failure_of(config: dict[str, str]) -> KafkaError:
    """The error a client with ``config`` gets asking the broker for metadata."""
    # librdkafka's complaints go to logging (captured), not to the terminal.
    admin = AdminClient({**config, "socket.connection.setup.timeout.ms": 3000, "logger": LOG})
    with pytest.raises(KafkaException) as raised:
        admin.list_topics(timeout=5)
    return raised.value.args[0]


def test_a_plaintext_client_is_refused(secure: SecureStack) -> None:
    error = failure_of({"bootstrap.servers": secure.broker.bootstrap})
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT), error
    producer = Producer(
        {"bootstrap.servers": secure.broker.bootstrap, "message.timeout.ms": 3000, "logger": LOG}
    )
    reports: list[KafkaError | None] = []
    producer.produce("secure-deployments", b"v", on_delivery=lambda e, _m: reports.append(e))
    producer.flush(10)
    assert reports and reports[0] is not None, "a plaintext produce must not be delivered"


def test_tls_without_sasl_is_refused(secure: SecureStack) -> None:
    config = secure.client_config()
    tls_only = {
        "bootstrap.servers": config["bootstrap.servers"],
        "security.protocol": "ssl",
        "ssl.ca.location": config["ssl.ca.location"],
    }
    error = failure_of(tls_only)
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT), error


def test_a_wrong_password_is_refused(secure: SecureStack) -> None:
    error = failure_of({**secure.client_config("gateway"), "sasl.password": "not-the-password"})
    assert error.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT), error


def test_a_client_that_does_not_trust_the_ca_is_refused(secure: SecureStack) -> None:
    config = {k: v for k, v in secure.client_config().items() if k != "ssl.ca.location"}
    error = failure_of(config)
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._SSL), error


def test_the_gateway_user_cannot_write_what_the_workers_store(secure: SecureStack) -> None:
    # The gateway reads the public state topic (its change stream) but only workers write it,
    # and it cannot join the workers' group (and so take their partitions).
    producer = Producer(
        {**secure.client_config("gateway"), "message.timeout.ms": 5000, "logger": LOG}
    )
    reports: list[KafkaError | None] = []
    state = secure.services.config.state_topic
    producer.produce(state, b"v", b"k", on_delivery=lambda e, _m: reports.append(e))
    producer.flush(15)
    assert reports and reports[0] is not None, "the gateway's credentials wrote the state topic"
    assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports[0]
    consumer = Consumer(
        {
            **secure.client_config("gateway"),
            "group.id": secure.services.config.app_id,
            "enable.auto.commit": False,
            "logger": LOG,
        }
    )
    try:
        consumer.subscribe([secure.services.config.topic])
        errors = []
        for _ in range(20):
            message = consumer.poll(0.5)
            if message is not None and message.error():
                errors.append(message.error().code())
                break
        assert errors, "the gateway's credentials joined the workers' group"
        assert errors[0] == KafkaError.GROUP_AUTHORIZATION_FAILED, errors
    finally:
        consumer.close()
