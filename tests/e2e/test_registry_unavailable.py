"""The schema registry is away at start, then comes, then goes away while the stack runs.

At start both services wait and say why in ``/readyz`` (the gateway answers submissions 503
meanwhile); when the registry comes they register and get ready by themselves. Once running,
a registry that goes away stops nothing and loses nothing: the schemas are cached. When it
returns, the schemas are still there: they are stored in Kafka. A registry that refuses a
schema stops the service at start with a clear message.

The registry here is this module's own Apicurio (port chosen up front, its own KafkaSQL
topics on the session's broker), so it can be killed and started again without disturbing
the session's registry.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from deploystream.kafka.broker import free_port
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.apicurio import CCOMPAT_PATH, LocalRegistry, ensure_app
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import ServiceProcess, StackConfig, gateway_process, worker_process
from streams.topics import ensure_topic
from tests.e2e.conftest import API, SIGNING_KEY, secret_of, write_clients_file
from tests.e2e.test_deployments_api import deployment
from tests.integration.test_pipeline import _listening_addresses


@dataclass
class Observed:
    """What the scenario saw, step by step."""

    topic: str = ""
    gateway_waiting: dict[str, Any] = field(default_factory=dict)
    worker_waiting: dict[str, Any] = field(default_factory=dict)
    submit_waiting: httpx.Response | None = None
    lookup_waiting: int = 0
    ready_after_s: float = 0.0
    registered: dict[str, list[int]] = field(default_factory=dict)
    while_down: dict[str, Any] = field(default_factory=dict)
    after_restart: dict[str, list[int]] = field(default_factory=dict)
    registry_listens: set[tuple[str, int]] = field(default_factory=set)
    registry_ports: set[int] = field(default_factory=set)


def get(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url, timeout=10)
    return response.status_code, response.json()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def says_why(readyz: str) -> bool:
    return "schema registry" in str(get(readyz)[1].get("reason"))


def wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            msg = f"{what} within {timeout:.0f}s"
            raise TimeoutError(msg)
        time.sleep(0.2)
    return time.monotonic() - started


def subjects_and_ids(url: str, topic: str) -> dict[str, list[int]]:
    """Our subjects on ``url`` and the schema id of each version."""
    with SchemaRegistryClient({"url": url, "timeout": 10}) as client:
        return {
            subject: [
                client.get_version(subject, v).schema_id for v in client.get_versions(subject)
            ]
            for subject in client.get_subjects()
            if subject.startswith(topic)
        }


def config_of(kafka: ProvidedBroker, registry_url: str, tmp: Path) -> StackConfig:
    suffix = tmp.name[-12:].replace("_", "-")
    return StackConfig.in_folder(
        kafka.bootstrap,
        registry_url,
        tmp,
        partitions=2,
        topic=f"deployments-{suffix}",
        app_id=f"deploystream-{suffix}",
        extra_env={
            "DEPLOYSTREAM_CLIENTS_FILE": str(write_clients_file(tmp / "clients.yaml")),
            "DEPLOYSTREAM_TOKEN_SIGNING_KEY": SIGNING_KEY,
        },
    )


@pytest.fixture(scope="module")
def observed(kafka: ProvidedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    tmp = tmp_path_factory.mktemp("noregistry")
    port = free_port()
    registry = LocalRegistry(
        ensure_app(),
        bootstrap=kafka.bootstrap,
        work_dir=tmp / "registry",
        port=port,
        topic_prefix=f"registry-{tmp.name[-8:]}",
    )
    config = config_of(kafka, f"http://127.0.0.1:{port}{CCOMPAT_PATH}", tmp)
    ensure_topic(kafka.bootstrap, config.topic, config.partitions, 1)
    worker, gateway = worker_process(config), gateway_process(config)
    services = [worker.start(), gateway.start()]
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{config.gateway_port}",
        timeout=30,
        auth=("alpha", secret_of("alpha")),
    )
    seen = Observed(config.topic)
    worker_url = f"http://127.0.0.1:{config.worker_ports[0]}"
    path = f"{API}/pipelines/web/environments/prod/deployments"
    try:
        # 1. No registry: both up, neither ready, both say why.
        wait(lambda: answers(f"{worker_url}/healthz"), 60, "worker up")
        wait(lambda: answers(f"http://127.0.0.1:{config.gateway_port}/healthz"), 60, "gateway up")
        # Until its first attempt fails, a service says it is registering; then why it waits.
        for readyz in (f"http://127.0.0.1:{config.gateway_port}/readyz", f"{worker_url}/readyz"):
            wait(lambda url=readyz: says_why(url), 30, f"{readyz} names the registry")
        ready = http.get("/readyz")
        seen.gateway_waiting = {**ready.json(), "http": ready.status_code}
        status, body = get(f"{worker_url}/readyz")
        seen.worker_waiting = {**body, "http": status}
        seen.submit_waiting = http.post(f"{API}/bulk", json={"deployments": [deployment(1)]})
        # 2. The registry comes: both register and get ready by themselves.
        registry.start()
        started = time.monotonic()
        for service in services:
            service.wait_ready(90)
        seen.ready_after_s = time.monotonic() - started
        seen.registered = subjects_and_ids(registry.url, config.topic)
        assert registry.pid is not None
        seen.registry_listens = _listening_addresses(registry.pid)
        seen.registry_ports = {port, registry.management_port or 0}
        # 3. The registry goes away: submissions and lookups go on, the worker applies.
        registry.kill()
        for number in (2, 3):
            seen.while_down[f"submit-{number}"] = http.post(
                f"{API}/bulk", json={"deployments": [deployment(number)]}
            ).status_code
        deadline = time.monotonic() + 30
        for number in (2, 3):
            while http.get(f"{path}/{number}").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            seen.while_down[f"lookup-{number}"] = http.get(f"{path}/{number}").status_code
        seen.while_down["gateway-ready"] = http.get("/readyz").status_code
        seen.while_down["worker-alive"] = (
            worker.process is not None and worker.process.poll() is None
        )
        # 4. It returns (same topics): everything registered before is still there.
        registry.start()
        seen.after_restart = subjects_and_ids(registry.url, config.topic)
        yield seen
    finally:
        http.close()
        for service in reversed(services):
            service.stop()
        registry.stop()


def test_services_wait_and_say_why_while_the_registry_is_unreachable(observed: Observed) -> None:
    for waiting in (observed.gateway_waiting, observed.worker_waiting):
        assert waiting["http"] == 503
        assert waiting["status"] == "not ready"
        assert waiting["registry"] is False
        assert "schema registry" in waiting["reason"]
        assert "unavailable" in waiting["reason"]


def test_submissions_get_503_with_retry_after_until_the_schemas_are_registered(
    observed: Observed,
) -> None:
    response = observed.submit_waiting
    assert response is not None
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "schema registry" in response.json()[0]["message"]


def test_services_register_and_get_ready_when_the_registry_comes(observed: Observed) -> None:
    assert observed.ready_after_s < 60
    topic = observed.topic
    # Values framed and registered; keys registered for discovery.
    assert {
        f"{topic}-key",
        f"{topic}-value",
        f"{topic}-state-key",
        f"{topic}-state-value",
        f"{topic}-dead-letter-value",
    } <= set(observed.registered)


def test_the_registry_listens_on_loopback_only_main_and_management_port(
    observed: Observed,
) -> None:
    assert {port for _, port in observed.registry_listens} == observed.registry_ports
    for address, _ in observed.registry_listens:
        # The JVM may bind 127.0.0.1 through an IPv6 socket (::ffff:127.0.0.1): loopback too.
        ip = ipaddress.ip_address(address)
        assert (getattr(ip, "ipv4_mapped", None) or ip).is_loopback, address


def test_a_registry_outage_while_running_stops_nothing_and_loses_nothing(
    observed: Observed,
) -> None:
    assert observed.while_down == {
        "submit-2": 202,
        "submit-3": 202,
        "lookup-2": 200,
        "lookup-3": 200,
        "gateway-ready": 200,
        "worker-alive": True,
    }


def test_schemas_survive_a_registry_restart_because_they_live_in_kafka(
    observed: Observed,
) -> None:
    assert observed.after_restart == observed.registered


def refusing_subject(schema_registry: ProvidedRegistry, subject: str, name: str) -> None:
    """Register under ``subject`` a schema that ours cannot read: it lacks our fields."""
    legacy = {
        "type": "record",
        "name": name,
        "namespace": "deploystream",
        "fields": [{"name": "legacy", "type": "string"}],
    }
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        client.register_schema(subject, Schema(json.dumps(legacy), "AVRO"))


@pytest.mark.parametrize(
    ("service", "subject", "record"),
    [
        ("gateway", "{topic}-value", "DeploymentEvent"),
        ("worker", "{topic}-state-value", "StoredDeployment"),
    ],
)
def test_a_refused_schema_stops_the_service_at_start_with_a_clear_message(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path: Path,
    service: str,
    subject: str,
    record: str,
) -> None:
    config = config_of(kafka, schema_registry.url, tmp_path)
    ensure_topic(kafka.bootstrap, config.topic, config.partitions, 1)
    refusing_subject(schema_registry, subject.format(topic=config.topic), record)
    process: ServiceProcess = (gateway_process if service == "gateway" else worker_process)(config)
    process.start()
    assert process.process is not None
    try:
        code = process.process.wait(60)
    finally:
        process.stop()
    log = process.log_path.read_text()
    assert code == 2, log[-3000:]
    assert f"refuses deploystream.{record}" in log
    assert "not BACKWARD compatible" in log
