"""Records the worker cannot apply are dead-lettered; the partition keeps flowing.

Poison includes records that are not in the Confluent wire format (among them a valid
DeploymentEvent written schemaless, as before the registry) and records naming a schema id
the registry does not know.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer

from gateway.events import EventCodecs, deployment_key, deployment_submitted
from gateway.validation import DeploymentData, ItemRejected, validate_deployment
from schemas import AvroCodec
from schemas.registry import FramedCodec, SchemaRegistry, header
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments_api import deployment, present

UNKNOWN_ID = 2**31 - 1


def schemaless_event() -> bytes:
    """A valid DeploymentEvent as deploystream wrote them before the registry: no framing."""
    item = validate_deployment(orjson.dumps(deployment(number=9)))
    assert isinstance(item, DeploymentData)
    return deployment_submitted(
        EventCodecs(AvroCodec("DeploymentEvent")), "alpha", item, {}, None
    ).value


NOT_FRAMED = [b"", b"\xff" * 64, schemaless_event()]
UNKNOWN_SCHEMA = header(UNKNOWN_ID) + b"\x02x"


def read_letters(stack: Stack, expected: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": stack.config.bootstrap,
            "group.id": f"dlq-reader-{stack.config.app_id}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{stack.config.topic}-dead-letter"])
    letters = []
    with SchemaRegistry(stack.config.registry_url) as registry:
        codec = FramedCodec("DeadLetter", registry)
        try:
            for _ in range(60):
                message = consumer.poll(1.0)
                if message is None or message.error():
                    if len(letters) >= expected:
                        break
                    continue
                letters.append(codec.decode(message.value()))
        finally:
            consumer.close()
    return letters


def test_undecodable_records_are_dead_lettered_and_later_records_applied(stack: Stack) -> None:
    key = deployment_key("alpha", "poison", "prod", 1)
    producer = Producer(
        {"bootstrap.servers": stack.config.bootstrap, "partitioner": "murmur2_random"}
    )
    poison = [*NOT_FRAMED, UNKNOWN_SCHEMA]
    for value in poison:
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
    assert float(poison_line.split()[-1]) >= len(poison) + 1

    letters = read_letters(stack, len(poison) + 1)
    by_value = {letter["value"]: letter for letter in letters}
    assert set(poison) | {b"no key at all"} <= set(by_value)
    for value in NOT_FRAMED:
        assert "Confluent wire format" in by_value[value]["error"]
    assert f"schema id {UNKNOWN_ID} is unknown" in by_value[UNKNOWN_SCHEMA]["error"]
    letter = by_value[NOT_FRAMED[2]]
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
    with SchemaRegistry(stack.config.registry_url) as registry:
        events = FramedCodec("DeploymentEvent", registry)
        events.register(f"{stack.config.topic}-value")  # the registered schema: same id
        key, value = oversized_gated_event(EventCodecs(events))
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
    with SchemaRegistry(stack.config.registry_url) as registry:
        codec = FramedCodec("DeadLetter", registry)
        try:
            while idle < 5:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    idle += 1
                    continue
                idle = 0
                letters.append(codec.decode(message.value()))
        finally:
            consumer.close()
    return letters
