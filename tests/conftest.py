"""Shared fixtures: a real Kafka broker and a real schema registry for the whole session,
started here.

``DEPLOYSTREAM_KAFKA_BOOTSTRAP`` points the suite at an existing cluster; otherwise a Docker
engine that answers (testcontainers) or else the Maven-jar broker is started.
``DEPLOYSTREAM_SCHEMA_REGISTRY_URL`` points it at an existing registry; otherwise Apicurio
Registry is started once, its schemas on the session's broker. Nothing skips for want of
either: if one cannot be had, the tests that need it fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from deploystream.kafka.provision import ProvidedBroker, provide_broker
from deploystream.registry.provision import ProvidedRegistry, provide_registry

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from its folder."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvidedBroker]:
    """One real broker for the session, stopped at the end (also on failure or Ctrl-C)."""
    with provide_broker(work_dir=tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def schema_registry(
    kafka: ProvidedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProvidedRegistry]:
    """One real registry for the session (a JVM: ~6-15 s to start), stopped at the end."""
    with provide_registry(kafka.bootstrap, work_dir=tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names for topics, groups and app ids, so tests never see each other's data."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def create_topic(kafka: ProvidedBroker) -> Callable[[str, int], str]:
    """Create a topic with ``partitions`` partitions and wait until it exists."""

    def create(name: str, partitions: int) -> str:
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        return name

    return create
