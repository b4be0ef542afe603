"""Shared fixtures: a real Kafka broker for the whole session, started here.

``DEPLOYSTREAM_KAFKA_BOOTSTRAP`` points the suite at an existing cluster; otherwise a Docker
engine (testcontainers) or the Maven-jar broker is started. Nothing skips for want of Kafka:
if no broker can be had, the tests that need one fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from deploystream.kafka.provision import ProvidedBroker, provide_broker

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
