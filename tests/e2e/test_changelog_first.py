"""Changelog first: while Kafka cannot take a change's changelog record, the worker's table
does not show the change and its input offset is not committed; after a crash the change is
applied exactly once, in lookups and in the state topic alike.

The state topic is made to refuse every write (``max.message.bytes`` below any record: the
broker answers MESSAGE_TOO_LARGE), while the input topic keeps working; the worker retries
until the limit is lifted. On the old
write path (faust's ``Table.__setitem__``, b539001) the table moved ahead of Kafka here: the
delete showed in lookups while its tombstone was nowhere, the state in which a takeover or
a commit that raced faust's changelog buffer resurrected deleted deployments.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from chaos.verify import read_state_topic
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from gateway.events import deployment_key
from tests.e2e.conftest import Stack, start_stack
from tests.e2e.test_deployments_api import deployment


@pytest.fixture
def one_partition(
    kafka: ProvidedBroker, schema_registry: ProvidedRegistry, tmp_path: Path
) -> Iterator[Stack]:
    running = start_stack(kafka, schema_registry, tmp_path, partitions=1)
    yield running
    running.http.close()
    running.stop()


def _record_limit(bootstrap: str, topic: str, limit: int | None) -> None:
    entry = (
        ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)
        if limit is not None
        else ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)
    )
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.incremental_alter_configs([resource])[resource].result(30)


def _committed(stack: Stack) -> int:
    consumer = Consumer(
        {"bootstrap.servers": stack.config.bootstrap, "group.id": stack.config.app_id}
    )
    try:
        [tp] = consumer.committed([TopicPartition(stack.config.topic, 0)], timeout=10)
        return tp.offset
    finally:
        consumer.close()


def test_a_change_kafka_cannot_take_is_neither_visible_nor_committed_and_survives_a_crash(
    one_partition: Stack,
) -> None:
    stack = one_partition
    path = stack.path("web", "prod", 1)
    assert stack.submit(deployment(number=1, usn=5)).status_code == 202
    assert stack.wait_for(path, lambda r: r.status_code == 200).status_code == 200
    stack.wait_caught_up()
    committed_before = _committed(stack)

    _record_limit(stack.config.bootstrap, stack.config.state_topic, 1)
    try:
        assert stack.http.delete(path).status_code == 202  # the input topic still works
        time.sleep(4)  # several apply batches and commit intervals
        found = stack.http.get(path)
        assert found.status_code == 200, "the table ran ahead of its changelog"
        assert found.json()["updateSequenceNumber"] == 5
        assert _committed(stack) == committed_before, "an input offset passed its changelog"
        worker = stack.workers[0]
        worker.kill()
    finally:
        _record_limit(stack.config.bootstrap, stack.config.state_topic, None)

    worker.start().wait_ready(90)
    stack.wait_caught_up(60)
    assert stack.wait_for(path, lambda r: r.status_code == 404).status_code == 404
    key = deployment_key("alpha", "web", "prod", 1)
    assert key not in read_state_topic(stack.config.bootstrap, stack.config.state_topic)
