"""librdkafka (the gateway's producer) and faust (aiokafka) put the same key on the same
partition: the worker that owns a key's partition is the one lookups are routed to."""

from __future__ import annotations

import random
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer

from deploystream.kafka.provision import ProvidedBroker
from gateway.events import deployment_key
from gateway.producer import producer_config
from gateway.settings import GatewaySettings

PARTITIONS = 8


def _random_keys(count: int) -> list[bytes]:
    rng = random.Random(20261127)
    keys = []
    for _ in range(count):
        tenant = f"tenant-{rng.randrange(50)}"
        pipeline = "".join(rng.choice("abcdef/:% é") for _ in range(rng.randrange(1, 30)))
        keys.append(
            deployment_key(tenant, pipeline, f"env-{rng.randrange(9)}", rng.getrandbits(63))
        )
    return keys


async def test_gateway_and_faust_partitioners_agree_on_1000_keys(
    kafka: ProvidedBroker, create_topic: Callable[[str, int], str], unique: Callable[[str], str]
) -> None:
    topic = create_topic(unique("partitions"), PARTITIONS)
    keys = _random_keys(1000)
    config = producer_config(GatewaySettings(kafka_bootstrap=kafka.bootstrap))
    producer = Producer(config)
    delivered: dict[bytes, int] = {}

    def on_delivery(error: object, message: object) -> None:
        assert error is None, error
        delivered[message.key()] = message.partition()  # type: ignore[attr-defined]

    for key in keys:
        producer.produce(topic, b"x", key, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert len(delivered) == len(keys)
    assert len(set(delivered.values())) == PARTITIONS, "keys should spread over all partitions"

    # faust routes with its aiokafka producer's partitioner (Producer.key_partition).
    faust_side = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await faust_side.start()
    try:
        await faust_side.client.force_metadata_update()
        mismatches = [
            key
            for key in keys
            if faust_side._partition(topic, None, None, None, key, None) != delivered[key]
        ]
    finally:
        await faust_side.stop()
    assert mismatches == []


async def test_librdkafka_default_partitioner_would_disagree(
    kafka: ProvidedBroker, create_topic: Callable[[str, int], str], unique: Callable[[str], str]
) -> None:
    """Guards the explicit setting: without murmur2 the two sides differ."""
    topic = create_topic(unique("crc"), PARTITIONS)
    keys = _random_keys(200)
    config = producer_config(GatewaySettings(kafka_bootstrap=kafka.bootstrap))
    del config["partitioner"]
    producer = Producer(config)
    delivered: dict[bytes, int] = {}
    for key in keys:
        producer.produce(
            topic, b"x", key, on_delivery=lambda e, m: delivered.__setitem__(m.key(), m.partition())
        )
    assert producer.flush(30) == 0
    faust_side = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await faust_side.start()
    try:
        await faust_side.client.force_metadata_update()
        agree = sum(
            faust_side._partition(topic, None, None, None, k, None) == delivered[k] for k in keys
        )
    finally:
        await faust_side.stop()
    assert agree < len(keys)
