"""The state topic is a public, compacted topic of current state that another service can read
with nothing but a Kafka client, an Avro library and the ``.avsc`` files in ``schemas/``.

The reading code here (``read_state``, ``rebuild``, ``SCHEMAS``) deliberately imports nothing
from this project; the fixtures use the project to run the stack and produce the data.
"""

from __future__ import annotations

import io
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from fastavro import schemaless_reader
from fastavro.schema import load_schema

from tests.e2e.conftest import Stack

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
KEY_SCHEMA = load_schema(str(SCHEMAS / "deploystream.DeploymentKey.avsc"))
VALUE_SCHEMA = load_schema(str(SCHEMAS / "deploystream.StoredDeployment.avsc"))
#: The stack's HTTP client authenticates as client "alpha"; the tenant is the client id.
TENANT = "alpha"
PIPELINE = "state-topic"

Record = tuple[bytes, bytes | None]


def decode(schema: Any, data: bytes) -> dict[str, Any]:
    return schemaless_reader(io.BytesIO(data), schema, None)


def read_state(bootstrap: str, topic: str) -> dict[int, list[Record]]:
    """Every record of ``topic`` up to its current end, per partition, in offset order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"state-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    records: dict[int, list[Record]] = defaultdict(list)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        while ends:
            message = consumer.poll(10)
            assert message is not None, f"no record within 10 s, still expecting {ends}"
            assert message.error() is None, message.error()
            partition = message.partition()
            records[partition].append((message.key(), message.value()))
            if message.offset() + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()
    return records


def rebuild(records: dict[int, list[Record]]) -> dict[bytes, dict[str, Any]]:
    """Current state: the latest value of each key; a tombstone (null value) removes it."""
    state: dict[bytes, dict[str, Any]] = {}
    for partition_records in records.values():
        for key, value in partition_records:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = decode(VALUE_SCHEMA, value)
    return state


def without_nulls(value: Any) -> Any:
    """The API leaves absent optional fields out; Avro carries them as null."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def deployment(number: int, usn: int, name: str = "") -> dict[str, Any]:
    return {
        "deploymentSequenceNumber": number,
        "updateSequenceNumber": usn,
        "displayName": name or f"deploy {number} v{usn}",
        "url": f"https://ci.example.com/{number}",
        "description": "state topic",
        "lastUpdated": "2026-01-01T12:00:00Z",
        "state": "successful",
        "issueKeys": ["OPS-7"],
        "pipeline": {"id": PIPELINE, "displayName": "S", "url": "https://ci.example.com"},
        "environment": {"id": "prod", "displayName": "Prod", "type": "production"},
    }


PLAIN = range(1, 21)
UPDATED, REWRITTEN, OUTDATED, CONFLICTING, DELETED = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def state(stack: Stack) -> dict[int, list[Record]]:
    """Submit, update, re-submit and delete through the gateway; the state topic afterwards."""
    steps = [
        [deployment(n, 1) for n in PLAIN],
        [deployment(UPDATED, 2)],
        # Same updateSequenceNumber, same content: accepted, re-written (DESIGN.md semantics 2).
        [deployment(REWRITTEN, 1)],
        # Older, and equal with other content: accepted, nothing written.
        [deployment(OUTDATED, 0)],
        [deployment(CONFLICTING, 1, name="other content")],
    ]
    for step in steps:
        assert stack.submit(*step).status_code == 202
    assert stack.http.delete(stack.path(PIPELINE, "prod", DELETED)).status_code == 202
    # faust flushes table changes to the state topic before it commits the source offsets.
    stack.wait_caught_up()
    return read_state(stack.config.bootstrap, stack.config.state_topic)


def records_of(state: dict[int, list[Record]], number: int) -> list[bytes | None]:
    return [
        value
        for records in state.values()
        for key, value in records
        if decode(KEY_SCHEMA, key)["deploymentSequenceNumber"] == number
        and decode(KEY_SCHEMA, key)["pipelineId"] == PIPELINE
    ]


def test_state_topic_is_compacted_and_partitioned_like_the_deployments_topic(
    stack: Stack,
) -> None:
    admin = AdminClient({"bootstrap.servers": stack.config.bootstrap})
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[stack.config.state_topic].partitions) == stack.config.partitions
    assert len(topics[stack.config.topic].partitions) == stack.config.partitions
    resource = ConfigResource(ConfigResource.Type.TOPIC, stack.config.state_topic)
    config = admin.describe_configs([resource])[resource].result(10)
    assert config["cleanup.policy"].value == "compact"


def test_keys_are_deployment_keys_and_values_stored_deployments(
    state: dict[int, list[Record]],
) -> None:
    values = [(k, v) for records in state.values() for k, v in records if v is not None]
    assert values
    for key, value in values:
        decoded_key = decode(KEY_SCHEMA, key)
        assert decoded_key["tenant"] == TENANT
        assert decode(VALUE_SCHEMA, value)["key"] == decoded_key


def test_rebuilt_state_matches_lookups_through_the_gateway(
    stack: Stack, state: dict[int, list[Record]]
) -> None:
    rebuilt = {
        value["key"]["deploymentSequenceNumber"]: value
        for value in rebuild(state).values()
        if value["key"]["pipelineId"] == PIPELINE
    }
    assert sorted(rebuilt) == [n for n in PLAIN if n != DELETED]
    for number in PLAIN:
        response = stack.http.get(stack.path(PIPELINE, "prod", number))
        if number == DELETED:
            assert response.status_code == 404
            continue
        assert response.status_code == 200, response.text
        assert response.json() == without_nulls(rebuilt[number]["deployment"])
    assert rebuilt[UPDATED]["deployment"]["updateSequenceNumber"] == 2
    assert rebuilt[CONFLICTING]["deployment"]["displayName"] == f"deploy {CONFLICTING} v1"


def test_delete_is_a_tombstone_after_the_value(state: dict[int, list[Record]]) -> None:
    written = records_of(state, DELETED)
    assert written[-1] is None
    assert written[0] is not None


def test_equal_sequence_number_rewrites_the_identical_value(
    state: dict[int, list[Record]],
) -> None:
    # Consumers keeping the latest value per key see the same bytes twice; nothing changes.
    written = records_of(state, REWRITTEN)
    assert len(written) == 2
    assert written[0] == written[1]


def test_outdated_and_conflicting_updates_write_nothing(state: dict[int, list[Record]]) -> None:
    assert len(records_of(state, OUTDATED)) == 1
    assert len(records_of(state, CONFLICTING)) == 1
