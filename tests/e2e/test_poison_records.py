"""Records the worker cannot apply are dead-lettered; the partition keeps flowing."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer
from fastavro import schemaless_reader
from fastavro.schema import load_schema

from gateway.events import EventCodecs, deployment_submitted
from gateway.validation import ItemRejected, validate_deployment
from schemas import SCHEMA_DIR
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments_api import deployment, present

POISON = [
    b"",  # empty value
    b"\x00\x01not avro at all",
    b"\xff" * 64,
]


def test_undecodable_records_are_dead_lettered_and_later_records_applied(stack: Stack) -> None:
    key = EventCodecs().encode_key("alpha", "poison", "prod", 1)
    producer = Producer(
        {"bootstrap.servers": stack.config.bootstrap, "partitioner": "murmur2_random"}
    )
    for value in POISON:
        producer.produce(stack.config.topic, value, key)  # same key: same partition as below
    producer.produce(stack.config.topic, b"no key at all")
    assert producer.flush(30) == 0

    sent = deployment(number=1, pipeline={"id": "poison", "displayName": "P", "url": "https://p"})
    assert stack.submit(sent).status_code == 202
    found = stack.wait_for(stack.path("poison", "prod", 1), lambda r: r.status_code == 200)
    assert found.status_code == 200, "records after the poison ones must be applied"

    metrics = httpx.get(f"http://127.0.0.1:{stack.config.worker_ports[0]}/metrics").text
    poison_line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("deploystream_worker_poison_records_total")
    )
    assert float(poison_line.split()[-1]) >= len(POISON) + 1

    schema = load_schema(str(SCHEMA_DIR / "deploystream.DeadLetter.avsc"))
    consumer = Consumer(
        {
            "bootstrap.servers": stack.config.bootstrap,
            "group.id": f"dlq-reader-{stack.config.app_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{stack.config.topic}-dead-letter"])
    letters = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None or message.error():
                if len(letters) >= len(POISON) + 1:
                    break
                continue
            letters.append(schemaless_reader(io.BytesIO(message.value()), schema))
    finally:
        consumer.close()
    values = [letter["value"] for letter in letters]
    for value in POISON:
        assert value in values
    assert b"no key at all" in values
    letter = next(letter for letter in letters if letter["value"] == POISON[1])
    assert letter["topic"] == stack.config.topic
    assert letter["key"] == key
    assert letter["offset"] >= 0
    assert "DeploymentEvent" in letter["error"]


def oversized_gated_event(codecs: EventCodecs) -> tuple[bytes, bytes]:
    """A submission asking for gating in production, with 1,400 issue keys of 506 characters:
    its record fits the broker, its stored form does not (every key is stored twice more, in
    the gating details, with its link). The worker validates nothing, so the event is built
    beyond the gateway's limits, as any producer could."""
    item = deployment(
        number=1,
        pipeline={"id": "huge", "displayName": "H", "url": "https://h"},
        commands=[{"command": "initiate_deployment_gating"}],
    )
    validated = validate_deployment(orjson.dumps(item))
    assert not isinstance(validated, ItemRejected), validated
    event = deployment_submitted(codecs, "alpha", validated, {}, None)
    record = codecs.event.decode(event.value)
    record["payload"][1]["deployment"]["issueKeys"] = [
        f"{'K' * 250}-{number:0255d}" for number in range(1400)
    ]
    return event.key, codecs.event.encode(record)


def test_a_change_whose_stored_form_is_over_the_record_limit_is_dead_lettered(
    stack: Stack,
) -> None:
    codecs = EventCodecs()
    key, value = oversized_gated_event(codecs)
    assert 600_000 < len(value) < 1_000_000  # the broker takes the event itself
    producer = Producer(
        {"bootstrap.servers": stack.config.bootstrap, "partitioner": "murmur2_random"}
    )
    producer.produce(stack.config.topic, value, key)
    assert producer.flush(30) == 0
    later = deployment(number=2, pipeline={"id": "huge", "displayName": "H", "url": "https://h"})
    assert stack.submit(later).status_code == 202

    assert stack.wait_for(stack.path("huge", "prod", 2), present).status_code == 200
    assert stack.http.get(stack.path("huge", "prod", 1)).status_code == 404
    assert stack.workers[0].process is not None
    assert stack.workers[0].process.poll() is None, "the worker must not die on one record"
    letters = [
        letter for letter in _dead_letters(stack) if letter["key"] == key and letter["value"]
    ]
    assert letters, "the oversized change must be dead-lettered"
    assert "record limit" in letters[-1]["error"]
    assert letters[-1]["value"] == value


def _dead_letters(stack: Stack) -> list[dict[str, Any]]:
    schema = load_schema(str(SCHEMA_DIR / "deploystream.DeadLetter.avsc"))
    consumer = Consumer(
        {
            "bootstrap.servers": stack.config.bootstrap,
            "group.id": f"dlq-oversize-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{stack.config.topic}-dead-letter"])
    letters = []
    idle = 0
    try:
        while idle < 5:
            message = consumer.poll(1.0)
            if message is None or message.error():
                idle += 1
                continue
            idle = 0
            letters.append(schemaless_reader(io.BytesIO(message.value()), schema))
    finally:
        consumer.close()
    return letters
