"""The upgrade from schemaless topics: ``deploystream frame-topics`` frames the latest value of
every key of the state topic, refuses while events are unapplied, and a worker started
afterwards restores and serves the framed values."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from deploystream.kafka.broker import free_port
from deploystream.kafka.provision import ProvidedBroker
from deploystream.migrate import MigrationRefused, frame_topics
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import StackConfig, worker_process
from gateway.events import EventCodecs, deployment_key, deployment_submitted
from gateway.validation import DeploymentData, validate_deployment
from schemas import AvroCodec
from schemas.registry import FramedCodec, SchemaRegistry, value_subject
from streams.deployments.gating import GatingPolicy
from streams.deployments.progress import SOURCE_OFFSET_HEADER
from streams.deployments.records import Put, apply_event
from streams.internal_auth import INTERNAL_SECRET_HEADER
from streams.topics import COMPACTED, ensure_topic
from tests.e2e.test_deployments_api import deployment

PARTITIONS = 2
TENANT = "t"


def stored(number: int, name: str) -> tuple[bytes, dict[str, Any]]:
    """The key and StoredDeployment the worker would store for a fresh submission."""
    item = validate_deployment(orjson.dumps(deployment(number, displayName=name)))
    assert isinstance(item, DeploymentData)
    codecs = EventCodecs(AvroCodec("DeploymentEvent"))
    event = deployment_submitted(codecs, TENANT, item, {}, None)
    outcome = apply_event(None, codecs.event.decode(event.value), GatingPolicy(frozenset(), "x"))
    assert isinstance(outcome, Put)
    assert event.key is not None
    return event.key, outcome.value


def latest_records(bootstrap: str, topic: str) -> dict[bytes, tuple[bytes | None, Any]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}"})
    found: dict[bytes, tuple[bytes | None, Any]] = {}
    try:
        ends = {}
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        while ends:
            message = consumer.poll(10)
            assert message is not None
            found[message.key()] = (message.value(), message.headers())
            if message.offset() + 1 >= ends.get(message.partition(), 0):
                ends.pop(message.partition(), None)
    finally:
        consumer.close()
    return found


def commit_all(bootstrap: str, group: str, topic: str) -> None:
    """What workers that applied everything leave behind: offsets at the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1])
            for p in range(PARTITIONS)
        ]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


def wait_for(get: Callable[[], httpx.Response], timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    response = get()
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = get()
    return response


def test_schemaless_state_is_framed_once_and_restored_by_a_worker(
    kafka: ProvidedBroker, schema_registry: ProvidedRegistry, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    config = StackConfig(
        bootstrap=kafka.bootstrap,
        registry_url=schema_registry.url,
        gateway_port=0,
        worker_ports=[free_port()],
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        partitions=PARTITIONS,
        topic=f"upgrade-{suffix}",
        app_id=f"upgrade-{suffix}",
    )
    # The bucketed property index of that version lived in another topic: it is left as it
    # is (the worker rebuilds its index from the table).
    ensure_topic(kafka.bootstrap, config.topic, PARTITIONS, 1)
    ensure_topic(kafka.bootstrap, config.state_topic, PARTITIONS, 1, COMPACTED)
    plain = AvroCodec("StoredDeployment")
    old, updated, deleted = stored(1, "old"), stored(2, "updated"), stored(3, "deleted")
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "partitioner": "murmur2_random"})
    mark = [(SOURCE_OFFSET_HEADER, b"41")]
    producer.produce(config.topic, b"an applied event", old[0])
    for key, value in (old, updated, deleted):
        producer.produce(config.state_topic, plain.encode(value), key, headers=mark)
    producer.produce(config.state_topic, plain.encode(stored(2, "updated again")[1]), updated[0])
    producer.produce(config.state_topic, None, deleted[0], headers=mark)
    assert producer.flush(30) == 0
    tables = {config.state_topic: "StoredDeployment"}

    with SchemaRegistry(schema_registry.url) as registry:
        with pytest.raises(MigrationRefused, match="have not applied every record"):
            frame_topics(kafka.bootstrap, registry, config.app_id, config.topic, tables)
        commit_all(kafka.bootstrap, config.app_id, config.topic)
        first = frame_topics(kafka.bootstrap, registry, config.app_id, config.topic, tables)
        again = frame_topics(kafka.bootstrap, registry, config.app_id, config.topic, tables)
        framed = FramedCodec("StoredDeployment", registry)
        framed.register(value_subject(config.state_topic))

        assert first == {config.state_topic: 2}
        assert again == {config.state_topic: 0}
        latest = latest_records(kafka.bootstrap, config.state_topic)
        assert latest[deleted[0]][0] is None  # a tombstone stays the last word
        assert framed.decode(latest[old[0]][0] or b"") == old[1]
        updated_value = framed.decode(latest[updated[0]][0] or b"")
        assert updated_value["deployment"]["displayName"] == "updated again"
        assert latest[old[0]][1] == mark  # replays skip what they skipped before

    worker = worker_process(config).start()
    try:
        worker.wait_ready(120)
        url = f"http://127.0.0.1:{config.worker_ports[0]}/internal/deployments"
        secret = {INTERNAL_SECRET_HEADER: config.internal_secret}
        for key, name in ((old[0], "old"), (updated[0], "updated again")):
            encoded = base64.urlsafe_b64encode(key).decode()
            found = wait_for(
                lambda k=encoded: httpx.get(url, params={"key": k}, headers=secret, timeout=10)
            )
            assert found.status_code == 200, found.text
            assert found.json()["deployment"]["displayName"] == name
        gone = base64.urlsafe_b64encode(deployment_key(TENANT, "web", "prod", 3)).decode()
        missing = httpx.get(url, params={"key": gone}, headers=secret, timeout=10)
        assert missing.status_code == 404
    finally:
        assert worker.stop() == 0
