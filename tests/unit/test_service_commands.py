"""`deploystream kafka` and `deploystream registry`: their options, the listeners they accept
and the configuration they start the broker and the registry with (nothing is started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from deploystream.cli import main
from deploystream.kafka.broker import BrokerError, LocalKafka
from deploystream.kafka.jars import KAFKA_VERSION
from deploystream.kafka.properties import (
    Listener,
    ListenerError,
    loopback_listener,
    parse_listeners,
    server_properties,
)
from deploystream.kafka.provision import docker_broker
from deploystream.kafka.security import BrokerSecurity
from deploystream.services import broker_of, registry_of

LIBS = Path("/jars")


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


def broker(**options: Any) -> LocalKafka:
    defaults: dict[str, Any] = {
        "port": None,
        "listeners": None,
        "advertised_listeners": None,
        "controller_port": None,
        "data_dir": None,
        "heap": "512m",
    }
    return broker_of(lambda: LIBS, **(defaults | options))


def test_listeners_in_kafkas_notation_become_listeners_advertised_at_their_addresses() -> None:
    parsed = parse_listeners(
        "PLAINTEXT://0.0.0.0:9092,PLAINTEXT_HOST://0.0.0.0:9094",
        "PLAINTEXT_HOST://127.0.0.1:9094,PLAINTEXT://kafka:9092",
    )
    assert parsed == (
        Listener("PLAINTEXT", "0.0.0.0", 9092, "kafka:9092"),
        Listener("PLAINTEXT_HOST", "0.0.0.0", 9094, "127.0.0.1:9094"),
    )
    # A listener on every interface is reached from the same machine on 127.0.0.1.
    assert [item.local for item in parsed] == ["127.0.0.1:9092", "127.0.0.1:9094"]


@pytest.mark.parametrize(
    ("listeners", "advertised", "complaint"),
    [
        ("PLAINTEXT:9092", "PLAINTEXT:9092", "is not NAME://HOST:PORT"),
        ("plaintext://a:1", "plaintext://a:1", "is not NAME://HOST:PORT"),
        ("CONTROLLER://127.0.0.1:9093", "CONTROLLER://127.0.0.1:9093", "controller's listener"),
        ("A://h:1,A://h:2", "A://h:1", "listener A is given twice"),
        ("A://h:0", "A://h:0", "port 0 of A is out of range"),
        ("A://h:1,B://h:2", "A://h:1", "every listener needs one advertised address"),
        ("A://h:1", "A://h:1,B://h:2", "every listener needs one advertised address"),
        ("A://h:1,B://g:1", "A://h:1,B://g:1", "listeners share a port"),
        ("A://0.0.0.0:1", "A://0.0.0.0:1", "A advertises 0.0.0.0:1, which no client can dial"),
        ("A://:1", "A://:1", "A advertises no host:1"),
    ],
)
def test_listeners_kafka_would_refuse_or_no_client_could_use_are_refused(
    listeners: str, advertised: str, complaint: str
) -> None:
    with pytest.raises(ListenerError, match=complaint):
        parse_listeners(listeners, advertised)


def test_the_default_broker_listens_on_loopback_only() -> None:
    text = server_properties([loopback_listener(19092)], 19093, Path("/w/data"))
    config = properties(text)
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["inter.broker.listener.name"] == "PLAINTEXT"
    assert config["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["log.dirs"] == "/w/data"
    assert "@" not in text.replace("1@127", ""), "a placeholder was left unfilled"


def test_the_secure_broker_has_one_sasl_ssl_listener_and_a_tls_controller() -> None:
    text = server_properties([loopback_listener(1, "SASL_SSL")], 2, Path("/d"), "SSL")
    config = properties(text)
    assert config["listeners"] == "SASL_SSL://127.0.0.1:1,CONTROLLER://127.0.0.1:2"
    assert config["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert config["inter.broker.listener.name"] == "SASL_SSL"


def test_a_service_broker_keeps_its_controller_on_loopback_and_talks_plaintext() -> None:
    service = broker(
        listeners="PLAINTEXT://0.0.0.0:9092,PLAINTEXT_HOST://0.0.0.0:9094",
        advertised_listeners="PLAINTEXT://kafka:9092,PLAINTEXT_HOST://127.0.0.1:9094",
        controller_port=9093,
        data_dir=Path("/data"),
    )
    config = properties(service.properties())
    assert config["listeners"] == (
        "PLAINTEXT://0.0.0.0:9092,PLAINTEXT_HOST://0.0.0.0:9094,CONTROLLER://127.0.0.1:9093"
    )
    assert config["advertised.listeners"] == (
        "PLAINTEXT://kafka:9092,PLAINTEXT_HOST://127.0.0.1:9094"
    )
    assert config["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"
    )
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert config["log.dirs"] == "/data/data"
    assert (service.libs, service.port, service.bootstrap) == (LIBS, 9092, "127.0.0.1:9092")
    assert service.console, "a service logs to its standard output"


def test_listeners_advertise_themselves_unless_told_otherwise() -> None:
    service = broker(listeners="PLAINTEXT://127.0.0.1:9192", controller_port=9193)
    assert service.client_listeners() == (loopback_listener(9192),)


def test_port_alone_gives_one_loopback_listener() -> None:
    service = broker(port=9292, controller_port=9293, data_dir=Path("/d"))
    config = properties(service.properties())
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9292,CONTROLLER://127.0.0.1:9293"


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"port": 1, "listeners": "PLAINTEXT://127.0.0.1:2"}, "give --port or --listeners"),
        ({"advertised_listeners": "PLAINTEXT://h:1"}, "--advertised-listeners needs --listeners"),
        ({"listeners": "PLAINTEXT://0.0.0.0:1"}, "no client can dial"),
    ],
)
def test_contradictory_or_unusable_options_are_refused_before_any_jar_is_fetched(
    options: dict[str, Any], complaint: str
) -> None:
    fetched: list[bool] = []

    def libs() -> Path:
        fetched.append(True)
        return LIBS

    defaults = {"port": None, "listeners": None, "advertised_listeners": None}
    with pytest.raises(click.UsageError, match=complaint):
        broker_of(libs, **(defaults | options), controller_port=None, data_dir=None, heap="1g")
    assert fetched == []


def test_the_kafka_command_reports_bad_listeners_as_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["kafka", "--listeners", "PLAINTEXT://0.0.0.0:9092"], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert "Invalid value for --listeners" in result.output
    assert "no client can dial" in result.output


def test_a_broker_with_listeners_rejects_a_different_port_or_security(tmp_path: Path) -> None:
    listeners = (loopback_listener(9392),)
    with pytest.raises(BrokerError, match="not the first listener's"):
        LocalKafka(LIBS, port=1, listeners=listeners)
    security = BrokerSecurity({"admin": "secret"}, tmp_path)
    with pytest.raises(BrokerError, match="give no listeners"):
        LocalKafka(LIBS, security=security, listeners=listeners)


def registry_command(**options: Any) -> list[str]:
    defaults = {
        "bootstrap": "127.0.0.1:9092",
        "host": "127.0.0.1",
        "port": 8081,
        "compatibility": "BACKWARD",
        "topic_prefix": "deploystream-registry",
    }
    service = registry_of(Path("/app"), **(defaults | options))
    # Given, so that building the command line looks nothing up.
    service.java, service.management_port = Path("/jvm/bin/java"), 9000
    return service.command()


def test_the_registry_serves_its_api_where_told_and_its_management_on_loopback() -> None:
    command = registry_command(host="0.0.0.0", port=8080, bootstrap="kafka:9092")
    assert "-Dquarkus.http.host=0.0.0.0" in command
    assert "-Dquarkus.http.port=8080" in command
    assert "-Dquarkus.management.host=127.0.0.1" in command
    assert "-Dapicurio.storage.kind=kafkasql" in command
    assert "-Dapicurio.kafkasql.bootstrap.servers=kafka:9092" in command
    assert "-Dapicurio.rules.global.compatibility=BACKWARD" in command
    assert command[0] == "/jvm/bin/java"
    assert command[-2:] == ["-jar", "/app/quarkus-run.jar"]


def test_the_registry_keeps_its_schemas_in_the_topics_of_its_prefix() -> None:
    command = registry_command(topic_prefix="schemas", compatibility="FULL")
    assert "-Dapicurio.kafkasql.topic=schemas-journal" in command
    assert "-Dapicurio.kafkasql.snapshots.topic=schemas-snapshots" in command
    assert "-Dapicurio.events.kafka.topic=schemas-events" in command
    assert "-Dapicurio.rules.global.compatibility=FULL" in command


def test_a_registry_bound_to_every_interface_is_probed_on_loopback() -> None:
    service = registry_of(
        Path("/app"),
        bootstrap="kafka:9092",
        host="0.0.0.0",
        port=8080,
        compatibility="BACKWARD",
        topic_prefix="p",
    )
    assert service.url == "http://127.0.0.1:8080/apis/ccompat/v7"
    assert service.console


def test_the_registry_command_refuses_an_unknown_compatibility_rule() -> None:
    result = CliRunner().invoke(main, ["registry", "--compatibility", "SIDEWAYS"])
    assert result.exit_code == 2
    assert "'SIDEWAYS' is not one of" in result.output


def test_the_docker_broker_is_kafkas_image_of_the_jars_version_published_on_loopback() -> None:
    spec = docker_broker(19092)
    assert spec.image == f"apache/kafka:{KAFKA_VERSION}"
    # Only the client listener, and only on loopback (Docker's default is every interface).
    assert spec.ports == {"9092/tcp": ("127.0.0.1", 19092)}
    assert spec.env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://127.0.0.1:19092"
    assert spec.env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
