"""Other services read our topics with a Kafka client and the schema registry, nothing else.

The reading code here (``Reader``, ``read_topic``, ``rebuild``) deliberately uses nothing
from this project and no ``.avsc`` file: values go through confluent-kafka's
``AvroDeserializer`` (writer schema by the id in each record), keys through the schema the
registry lists under ``<topic>-key`` (keys are plain Avro, never framed). The fixtures use
the project to run the stack and produce the data, including one event from a newer
producer whose DeploymentEvent schema has an extra optional field.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import defaultdict
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader

from deploystream.tail import tail
from gateway.events import EventCodecs, deployment_submitted
from gateway.validation import DeploymentData, validate_deployment
from schemas import AvroCodec
from schemas.registry import FramedCodec, SchemaRegistry, schema_of, value_subject
from tests.e2e.conftest import Stack

#: The stack's HTTP client authenticates as client "alpha"; the tenant is the client id.
TENANT = "alpha"
PIPELINE = "state-topic"

Record = tuple[bytes, Any]


class Reader:
    """What another service needs to read a topic of ours: the registry's URL."""

    def __init__(self, registry_url: str, topic: str, *, record_names: bool = False) -> None:
        self.topic = topic
        client = SchemaRegistryClient({"url": registry_url, "timeout": 10})
        # TOPIC strategy: the default (ASSOCIATED) asks an API Apicurio does not have.
        conf = {"subject.name.strategy.type": "TOPIC"}
        self._value = AvroDeserializer(client, return_record_name=record_names, conf=conf)
        key_schema = client.get_latest_version(f"{topic}-key").schema.schema_str
        self._key = parse_schema(json.loads(key_schema))
        self._client = client

    def key(self, data: bytes) -> dict[str, Any]:
        return schemaless_reader(io.BytesIO(data), self._key, None)

    def value(self, data: bytes | None) -> Any:
        context = SerializationContext(self.topic, MessageField.VALUE)
        return None if data is None else self._value(data, context)

    def close(self) -> None:
        self._client.close()


def read_topic(bootstrap: str, reader: Reader) -> dict[int, list[Record]]:
    """Every record of the topic up to its current end, per partition, in offset order:
    (decoded key, decoded value or None)."""
    topic = reader.topic
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
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
            key = message.key()
            records[partition].append(
                (reader.key(key) if key else None, reader.value(message.value()))
            )
            if message.offset() + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()
    return records


def identity(key: dict[str, Any]) -> tuple[str, str, str, int]:
    return key["tenant"], key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"]


def rebuild(records: dict[int, list[Record]]) -> dict[tuple[str, str, str, int], Any]:
    """Current state: the latest value of each key; a tombstone (null value) removes it."""
    state: dict[tuple[str, str, str, int], Any] = {}
    for partition_records in records.values():
        for key, value in partition_records:
            if value is None:
                state.pop(identity(key), None)
            else:
                state[identity(key)] = value
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
#: Written by a newer producer, whose DeploymentEvent has an extra optional field.
EVOLVED = 30


def produce_evolved_event(stack: Stack) -> None:
    """What a newer gateway would write: DeploymentEvent with an ``origin`` field (optional,
    default null, so BACKWARD compatible), registered as a new version of the subject."""
    evolved = schema_of("DeploymentEvent")
    evolved["fields"] = [
        *evolved["fields"],
        {"name": "origin", "type": ["null", "string"], "default": None},
    ]
    item = validate_deployment(orjson.dumps(deployment(EVOLVED, 1, name="from a newer producer")))
    assert isinstance(item, DeploymentData)
    plain = EventCodecs(AvroCodec("DeploymentEvent"))
    event = deployment_submitted(plain, TENANT, item, {}, None)
    record = {**plain.event.decode(event.value), "origin": "newer-gateway"}
    with SchemaRegistry(stack.config.registry_url) as registry:
        codec = FramedCodec("DeploymentEvent", registry, schema=evolved)
        codec.register(value_subject(stack.config.topic))
        value = codec.encode(record)
    producer = Producer(
        {"bootstrap.servers": stack.config.bootstrap, "partitioner": "murmur2_random"}
    )
    producer.produce(stack.config.topic, value, event.key)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def written(stack: Stack) -> Stack:
    """Submit, update, re-submit and delete through the gateway, and one event from a newer
    producer; return once the worker applied everything."""
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
    produce_evolved_event(stack)
    # faust flushes table changes to the state topic before it commits the source offsets.
    stack.wait_caught_up()
    return stack


@pytest.fixture(scope="module")
def state(written: Stack) -> dict[int, list[Record]]:
    reader = Reader(written.config.registry_url, written.config.state_topic)
    try:
        return read_topic(written.config.bootstrap, reader)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def events(written: Stack) -> dict[int, list[Record]]:
    reader = Reader(written.config.registry_url, written.config.topic, record_names=True)
    try:
        return read_topic(written.config.bootstrap, reader)
    finally:
        reader.close()


def records_of(state: dict[int, list[Record]], number: int) -> list[Any]:
    return [
        value
        for records in state.values()
        for key, value in records
        if key["deploymentSequenceNumber"] == number and key["pipelineId"] == PIPELINE
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
        assert key["tenant"] == TENANT
        assert value["key"] == key


def test_rebuilt_state_matches_lookups_through_the_gateway(
    stack: Stack, state: dict[int, list[Record]]
) -> None:
    rebuilt = {
        number: value
        for (_, pipeline, _, number), value in rebuild(state).items()
        if pipeline == PIPELINE
    }
    assert sorted(rebuilt) == [*(n for n in PLAIN if n != DELETED), EVOLVED]
    for number in [*PLAIN, EVOLVED]:
        response = stack.http.get(stack.path(PIPELINE, "prod", number))
        if number == DELETED:
            assert response.status_code == 404
            continue
        assert response.status_code == 200, response.text
        assert response.json() == without_nulls(rebuilt[number]["deployment"])
    assert rebuilt[UPDATED]["deployment"]["updateSequenceNumber"] == 2
    assert rebuilt[CONFLICTING]["deployment"]["displayName"] == f"deploy {CONFLICTING} v1"


def test_deployments_topic_holds_every_accepted_submission_as_looked_up(
    stack: Stack, events: dict[int, list[Record]]
) -> None:
    # Per key: the first submission with the highest updateSequenceNumber is what is stored.
    latest: dict[int, dict[str, Any]] = {}
    deleted = set()
    for records in events.values():
        for key, event in records:
            if key is None or key["pipelineId"] != PIPELINE:
                continue
            kind, payload = event["payload"]
            number = key["deploymentSequenceNumber"]
            if kind == "deploystream.DeploymentDeleted":
                deleted.add(number)
            elif kind == "deploystream.DeploymentSubmitted":
                sent = payload["deployment"]
                seen = latest.get(number)
                if seen is None or sent["updateSequenceNumber"] > seen["updateSequenceNumber"]:
                    latest[number] = sent
    assert deleted == {DELETED}
    assert sorted(latest) == [*PLAIN, EVOLVED]
    for number, sent in latest.items():
        if number in deleted:
            continue
        response = stack.http.get(stack.path(PIPELINE, "prod", number))
        assert response.status_code == 200, response.text
        assert response.json() == without_nulls(sent)


def test_a_newer_producers_event_is_read_by_consumers_and_applied_by_the_worker(
    stack: Stack, events: dict[int, list[Record]]
) -> None:
    evolved = [
        event
        for records in events.values()
        for key, event in records
        if key is not None and key["deploymentSequenceNumber"] == EVOLVED
    ]
    assert len(evolved) == 1
    # The consumer reads with the writer's schema: it sees the new field ...
    assert evolved[0]["origin"] == "newer-gateway"
    # ... records of the older version carry none.
    older = [e for records in events.values() for _, e in records if e is not evolved[0]]
    assert older
    assert all("origin" not in event for event in older)
    # The worker reads with its own (older) schema and applied it.
    response = stack.http.get(stack.path(PIPELINE, "prod", EVOLVED))
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "from a newer producer"


def test_delete_is_a_tombstone_after_the_value(state: dict[int, list[Record]]) -> None:
    written = records_of(state, DELETED)
    assert written[-1] is None
    assert written[0] is not None


def test_equal_sequence_number_rewrites_the_identical_value(
    state: dict[int, list[Record]],
) -> None:
    # Consumers keeping the latest value per key see the same value twice; nothing changes.
    written = records_of(state, REWRITTEN)
    assert len(written) == 2
    assert written[0] == written[1]


def test_outdated_and_conflicting_updates_write_nothing(state: dict[int, list[Record]]) -> None:
    assert len(records_of(state, OUTDATED)) == 1
    assert len(records_of(state, CONFLICTING)) == 1


def tail_lines(stack: Stack, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        tail,
        [
            *args,
            "--bootstrap",
            stack.config.bootstrap,
            "--registry-url",
            stack.config.registry_url,
            "--deployments-topic",
            stack.config.topic,
        ],
    )
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.output.splitlines()]


def test_tail_prints_every_state_record_as_json_decoded_through_the_registry(
    written: Stack, state: dict[int, list[Record]]
) -> None:
    lines = tail_lines(written, "--topic", "state", "--from-beginning")
    assert len(lines) == sum(len(records) for records in state.values())
    assert all("error" not in line for line in lines)
    values = [line for line in lines if line["value"] is not None]
    assert all(line["key"] == line["value"]["key"] for line in values)
    assert {line["schemaId"] for line in values} == {values[0]["schemaId"]}
    tombstones = [line for line in lines if line["value"] is None]
    assert [line["key"]["deploymentSequenceNumber"] for line in tombstones] == [DELETED]


def test_tail_shows_the_last_events_of_each_partition_with_their_payload(
    written: Stack, events: dict[int, list[Record]]
) -> None:
    lines = tail_lines(written, "--topic", "events", "-n", "1")
    assert len(lines) == len(events)  # one per partition that has records
    for line in lines:
        kind, _ = line["value"]["payload"]
        assert kind.startswith("deploystream.")
        assert line["key"]["tenant"] == TENANT
