"""Records the worker cannot apply are dead-lettered; the partition keeps flowing."""

from __future__ import annotations

import io

import httpx
from confluent_kafka import Consumer, Producer
from fastavro import schemaless_reader
from fastavro.schema import load_schema

from gateway.events import EventCodecs
from schemas import SCHEMA_DIR
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments_api import deployment

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
