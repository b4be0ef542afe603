"""The baselines: a bare confluent-kafka producer and consumer on the gateway's own events.

Events are built exactly as the gateway builds them (validated with
:func:`gateway.validation.validate_deployment`, encoded with
:func:`gateway.events.deployment_submitted`), and produced with the gateway's own producer
settings (:func:`gateway.producer.producer_config`: acks=all, idempotent, murmur2_random,
lz4), so the only difference to the gateway is everything the gateway does around them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from deploystream.load import DeploymentGenerator
from gateway.events import EventCodecs, OutgoingEvent, deployment_submitted
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from gateway.validation import ItemRejected, ProviderMetadata, validate_deployment
from schemas.registry import FramedCodec, RecordCodec, SchemaRegistry

__all__ = ["Baseline", "bare_consume", "bare_produce", "encode_events", "produce_all"]


@dataclass(frozen=True)
class Baseline:
    """``count`` records in ``seconds``; ``cpu_s`` of this process meanwhile."""

    count: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


def encode_events(
    generator: DeploymentGenerator,
    count: int,
    tenant: str,
    codec: RecordCodec,
    bulk: int = 100,
) -> Iterator[OutgoingEvent]:
    """``count`` events of the generator's deployments, built like the gateway builds them
    (bodies of ``bulk`` deployments share their properties and provider metadata), values
    encoded with ``codec`` (the gateway's: a registered FramedCodec)."""
    codecs = EventCodecs(codec)
    made = 0
    while made < count:
        body = generator.body(min(bulk, count - made))
        properties = {k: str(v) for k, v in (body.get("properties") or {}).items()}
        provider = body.get("providerMetadata")
        metadata = ProviderMetadata(product=provider["product"]) if provider else None
        for item in body["deployments"]:
            deployment = validate_deployment(orjson.dumps(item))
            if isinstance(deployment, ItemRejected):  # the generator makes valid ones only
                msg = f"generated an invalid deployment: {deployment.errors}"
                raise AssertionError(msg)
            yield deployment_submitted(codecs, tenant, deployment, properties, metadata)
            made += 1


def _producer(bootstrap: str) -> Producer:
    return Producer(producer_config(GatewaySettings(kafka_bootstrap=bootstrap)))


class _Errors:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.count += 1


def _send(producer: Producer, topic: str, events: Iterator[OutgoingEvent], errors: _Errors) -> int:
    sent = 0
    for event in events:
        while True:
            try:
                producer.produce(topic, event.value, event.key, on_delivery=errors)
                break
            except BufferError:
                producer.poll(0.01)
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining or errors.count:
        msg = f"bare producer: {remaining} undelivered, {errors.count} failed deliveries"
        raise RuntimeError(msg)
    return sent


def _warm_up(producer: Producer, topic: str, event: OutgoingEvent) -> None:
    """Connect, learn the partitions and get the idempotent producer id before timing."""
    producer.list_topics(topic, timeout=10)
    producer.produce(topic, event.value, event.key)
    producer.flush(30)


def bare_produce(bootstrap: str, topic: str, events: list[OutgoingEvent]) -> Baseline:
    """Produce pre-encoded ``events`` and wait until every one is acknowledged (acks=all).
    One extra copy of the first event is sent untimed first (warm-up)."""
    producer = _producer(bootstrap)
    _warm_up(producer, topic, events[0])
    errors = _Errors()
    cpu0, t0 = time.process_time(), time.perf_counter()
    sent = _send(producer, topic, iter(events), errors)
    return Baseline(sent, time.perf_counter() - t0, time.process_time() - cpu0)


def produce_all(
    bootstrap: str, topic: str, events: Iterator[OutgoingEvent], *, warm_up: bool = False
) -> Baseline:
    """Encode-and-produce: build each event and produce it, as a client without a gateway
    would; waits for every acknowledgement. With ``warm_up``, the first event is sent
    twice (once untimed)."""
    producer = _producer(bootstrap)
    producer.list_topics(topic, timeout=10)
    if warm_up:
        first = next(events)
        _warm_up(producer, topic, first)
        events = itertools.chain([first], events)
    errors = _Errors()
    cpu0, t0 = time.process_time(), time.perf_counter()
    sent = _send(producer, topic, events, errors)
    return Baseline(sent, time.perf_counter() - t0, time.process_time() - cpu0)


def bare_consume(
    bootstrap: str, registry_url: str, topic: str, partitions: int, expected: int
) -> Baseline:
    """Read ``topic`` from the beginning and decode every (framed) value as the worker does,
    until ``expected`` records; timed from the first record (connection set-up excluded, as
    for the worker)."""
    codec = FramedCodec("DeploymentEvent", SchemaRegistry(registry_url))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bare-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52_428_800,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen = 0
    t0 = cpu0 = 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < expected and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=5000, timeout=0.5)
            for message in batch:
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                if seen == 0:
                    t0, cpu0 = time.perf_counter(), time.process_time()
                codec.decode(value)
                seen += 1
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        consumer.close()
    if seen < expected:
        msg = f"bare consumer read {seen} of {expected} records"
        raise RuntimeError(msg)
    return Baseline(seen, elapsed, cpu)
