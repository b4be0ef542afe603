"""One way to get a broker, whatever the machine: an existing cluster, Docker, or Maven jars.

Order of preference: ``DEPLOYSTREAM_KAFKA_BOOTSTRAP`` (an existing cluster, used as is), a
Docker engine that answers (the apache/kafka image of the same Kafka version, through
testcontainers), otherwise the broker from Maven Central jars
(:mod:`deploystream.kafka.broker`, SHA-256 checked), which is also what the compose file's
``kafka`` service runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploystream.kafka.broker import BrokerError, LocalKafka, free_port, metadata_ready
from deploystream.kafka.jars import KAFKA_VERSION, ensure_libs

__all__ = [
    "DOCKER_IMAGE",
    "DockerBroker",
    "ProvidedBroker",
    "docker_available",
    "docker_broker",
    "provide_broker",
]

logger = logging.getLogger(__name__)

#: Kafka's own image of the version the jars are, by tag: only test and development stacks
#: use it (the compose file builds its broker from the checked jars), and no digest could be
#: verified where this was written.
DOCKER_IMAGE = f"apache/kafka:{KAFKA_VERSION}"


@dataclass
class ProvidedBroker:
    """A reachable broker and how it was obtained (``external``, ``docker`` or ``maven``)."""

    bootstrap: str
    kind: str
    local: LocalKafka | None = None


def docker_available() -> bool:
    """True when a Docker engine answers a ping (not merely when the CLI is installed)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return False
    try:
        import docker  # noqa: PLC0415  (optional: only present with the dev extras)

        client = docker.from_env(timeout=3)
    except Exception:  # no client library or no engine: no usable Docker
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@dataclass(frozen=True)
class DockerBroker:
    """How the broker container is run: image, environment, published ports."""

    image: str
    env: dict[str, str]
    #: docker-py's ``ports``: container port -> (host address, host port).
    ports: dict[str, tuple[str, int]]


def docker_broker(port: int) -> DockerBroker:
    """The single-node KRaft container, published on 127.0.0.1 only (never every interface,
    Docker's default for a bare port)."""
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx512m",
    }
    # The controller port (9093) is not published at all.
    return DockerBroker(DOCKER_IMAGE, env, {"9092/tcp": ("127.0.0.1", port)})


@contextmanager
def _docker_broker(port: int, timeout: float) -> Iterator[ProvidedBroker]:
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415

    spec = docker_broker(port)
    container: Any = DockerContainer(spec.image)
    for name, value in spec.env.items():
        container.with_env(name, value)
    # Set directly: with_bind_ports() accepts a host port only, which docker-py publishes
    # on 0.0.0.0.
    container.ports.update(spec.ports)
    container.start()
    try:
        deadline = time.monotonic() + timeout
        while not metadata_ready("127.0.0.1", port, timeout=1.0):
            if time.monotonic() > deadline:
                msg = f"dockerised broker not ready within {timeout:.0f}s"
                raise BrokerError(msg)
            time.sleep(0.3)
        yield ProvidedBroker(f"127.0.0.1:{port}", "docker")
    finally:
        container.stop()


@contextmanager
def provide_broker(
    port: int | None = None,
    work_dir: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[ProvidedBroker]:
    """A running broker for the duration of the ``with`` block; stopped (and never orphaned)
    afterwards, also when the block raises or is interrupted."""
    external = os.environ.get("DEPLOYSTREAM_KAFKA_BOOTSTRAP")
    if external:
        logger.info("using the existing Kafka cluster at %s", external)
        yield ProvidedBroker(external, "external")
        return
    if docker_available():
        logger.info("starting %s through Docker", DOCKER_IMAGE)
        with _docker_broker(port or free_port(), timeout) as broker:
            yield broker
        return
    local = LocalKafka(ensure_libs(), work_dir=work_dir, port=port)
    logger.info("starting Kafka %s from Maven jars", KAFKA_VERSION)
    started = time.monotonic()
    local.start(timeout)
    logger.info("broker ready at %s in %.1fs", local.bootstrap, time.monotonic() - started)
    try:
        yield ProvidedBroker(local.bootstrap, "maven", local)
    finally:
        local.stop()
