"""The compose file's kafka and registry services, run as processes on loopback: their very
commands and health checks from docker-compose.yml, with the container's addresses, ports and
volume swapped for free loopback ones. No Docker engine is needed (or used).

A schema registers, a record written through the network listener (what the services use)
is read back through the host listener (what host tools use), the health checks pass, and
SIGTERM stops both cleanly; the broker keeps its data across a restart.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploystream.kafka.broker import die_with_parent, free_port, metadata_ready
from deploystream.registry.apicurio import CCOMPAT_PATH, registry_ready
from schemas.registry import FramedCodec, SchemaRegistry, value_subject

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
EVENT: dict[str, Any] = {
    "eventId": "e-compose",
    "recordedAt": datetime(2026, 1, 1, tzinfo=UTC),
    "tenant": "t",
    "key": None,
    "payload": ("deploystream.DeploymentDeleted", {"updateSequenceNumber": 7}),
}
#: What only a container would have: its addresses, its ports, its volume.
CONTAINER_ONLY = re.compile(r"0\.0\.0\.0|kafka:|\b(9092|9093|9094|8080)\b|=/data\b")


@dataclass(frozen=True)
class Loopback:
    """Where the services run here instead of in their containers."""

    network: int
    host: int
    controller: int
    registry: int
    data: Path

    @property
    def network_bootstrap(self) -> str:
        return f"127.0.0.1:{self.network}"

    @property
    def host_bootstrap(self) -> str:
        return f"127.0.0.1:{self.host}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry}{CCOMPAT_PATH}"

    def swap(self, args: list[str]) -> list[str]:
        """A compose command or health check with every container address swapped."""
        pairs = [
            ("0.0.0.0:9092", self.network_bootstrap),
            ("kafka:9092", self.network_bootstrap),
            ("0.0.0.0:9094", self.host_bootstrap),
            ("127.0.0.1:9094", self.host_bootstrap),
            ("--controller-port=9093", f"--controller-port={self.controller}"),
            ("--data-dir=/data", f"--data-dir={self.data}"),
            ("--host=0.0.0.0", "--host=127.0.0.1"),
            ("--port=8080", f"--port={self.registry}"),
            ("'127.0.0.1', 9092)", f"'127.0.0.1', {self.network})"),
            ("127.0.0.1:8080/", f"127.0.0.1:{self.registry}/"),
        ]
        swapped = []
        for original in args:
            arg = original
            for old, new in pairs:
                arg = arg.replace(old, new)
            swapped.append(sys.executable if arg == "python" else arg)
        left = [arg for arg in swapped if CONTAINER_ONLY.search(arg)]
        assert not left, f"container addresses this test does not know how to swap: {left}"
        return swapped


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


class Service:
    """A compose service's command as a child process (dies with the test run)."""

    def __init__(self, name: str, loopback: Loopback, log: Path) -> None:
        self.name = name
        self.command = loopback.swap(COMPOSE["services"][name]["command"])
        self.health_check = loopback.swap(COMPOSE["services"][name]["healthcheck"]["test"][1:])
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Service:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        return self

    def wait_until(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process is not None
            assert self.process.poll() is None, f"{self.name} exited: {self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"{self.name} not ready: {self.output()[-3000:]}"
            time.sleep(0.3)

    def healthy(self) -> bool:
        done = subprocess.run(self.health_check, capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM and wait, as ``docker compose stop`` does within the grace period."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    code = self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            else:
                code = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Stack:
    loopback: Loopback
    kafka: Service
    registry: Service

    def start_kafka(self) -> None:
        self.kafka.start()
        network, host = self.loopback.network, self.loopback.host
        self.kafka.wait_until(
            lambda: metadata_ready("127.0.0.1", network) and metadata_ready("127.0.0.1", host),
            timeout=120,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("compose")
    loopback = Loopback(*free_ports(4), data=folder / "kafka-data")
    running = Stack(
        loopback,
        Service("kafka", loopback, folder / "kafka.log"),
        Service("registry", loopback, folder / "registry.log"),
    )
    try:
        running.start_kafka()
        running.registry.start().wait_until(
            lambda: registry_ready(loopback.registry_url), timeout=150
        )
        yield running
    finally:
        running.registry.stop()
        running.kafka.stop()


def write_event(stack: Stack, topic: str) -> None:
    """``EVENT`` framed with its schema registered for ``topic``, through the listener the
    services use."""
    admin = AdminClient({"bootstrap.servers": stack.loopback.network_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    with SchemaRegistry(stack.loopback.registry_url) as registry:
        codec = FramedCodec("DeploymentEvent", registry)
        codec.register(value_subject(topic))
        producer = Producer(
            {"bootstrap.servers": stack.loopback.network_bootstrap, "enable.idempotence": True}
        )
        producer.produce(topic, codec.encode(EVENT), key=b"k")
        assert producer.flush(30) == 0


def read_event(stack: Stack, topic: str) -> Any:
    """The first record of ``topic``, decoded with a fresh registry client, through the
    listener host tools use."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.loopback.host_bootstrap,
            "group.id": f"compose-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            with SchemaRegistry(stack.loopback.registry_url) as registry:
                return FramedCodec("DeploymentEvent", registry).decode(message.value())
        pytest.fail(f"nothing read from {topic}")
    finally:
        consumer.close()


def test_a_schema_registers_and_a_record_round_trips_between_the_two_listeners(
    stack: Stack,
) -> None:
    topic = f"compose-{uuid.uuid4().hex[:8]}"
    write_event(stack, topic)
    assert read_event(stack, topic) == EVENT
    config = httpx.get(f"{stack.loopback.registry_url}/config", timeout=10).json()
    assert config["compatibilityLevel"] == "BACKWARD"
    # The registry keeps its schemas on this broker.
    topics = AdminClient({"bootstrap.servers": stack.loopback.host_bootstrap}).list_topics(
        timeout=10
    )
    assert "deploystream-registry-journal" in topics.topics


def test_the_compose_health_checks_pass_against_the_running_services(stack: Stack) -> None:
    assert stack.kafka.healthy()
    assert stack.registry.healthy()


def test_sigterm_stops_both_cleanly_and_the_broker_keeps_its_data(stack: Stack) -> None:
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    write_event(stack, topic)
    assert stack.registry.stop() == 0
    assert stack.kafka.stop() == 0
    assert not stack.kafka.healthy(), "the health check passes without a broker"
    assert "Kafka is ready" in stack.kafka.output()
    assert "Traceback" not in stack.kafka.output() + stack.registry.output()
    # Restarted on the same data, as `restart: unless-stopped` does: formatted once only.
    stack.start_kafka()
    stack.registry.start().wait_until(
        lambda: registry_ready(stack.loopback.registry_url), timeout=150
    )
    assert read_event(stack, topic) == EVENT
    assert (stack.loopback.data / "data" / "meta.properties").exists()
