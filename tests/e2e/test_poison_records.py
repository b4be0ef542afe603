"""Records the worker cannot apply are dead-lettered; the partition keeps flowing.

Poison includes records that are not in the Confluent wire format (among them a valid
DeploymentEvent written schemaless, as before the registry) and records naming a schema id
the registry does not know.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer

from gateway.events import EventCodecs, deployment_key, deployment_submitted
from gateway.validation import DeploymentData, validate_deployment
from schemas import AvroCodec
from schemas.registry import FramedCodec, SchemaRegistry, header
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments_api import deployment

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
