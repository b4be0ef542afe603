"""Stored deployments for the lookup and restart phases, written straight to a state topic.

A worker that applies events does ~1,000 events/s here, so a million stored deployments
cannot be had by applying events within a benchmark run. The worker's table is restored
from its state topic (the changelog) instead, which is what a restart does anyway: each
record is made by the project's own code path — the gateway's event encoding, the worker's
decoding and :func:`streams.deployments.records.apply_event` of that event on an empty key,
and the table's codec (``StoredDeployment`` registered under ``<topic>-value``, framed) — so
it is byte for byte what the worker would have written.

The seeded deployments carry no request properties, so the worker's property index is
legitimately empty: the restore measured is the deployments table's.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

from confluent_kafka import Producer

from bench.kafka import encode_events
from deploystream.load import DeploymentGenerator, GeneratorConfig
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from schemas import AvroCodec
from schemas.registry import FramedCodec, SchemaRegistry, value_subject
from streams.deployments.gating import GatingPolicy
from streams.deployments.records import Put, apply_event
from streams.settings import WorkerSettings
from streams.topics import COMPACTED, ensure_topic

__all__ = ["SeedResult", "seed_state_topic"]

CHUNK = 25_000

Key = tuple[str, str, int]


@dataclass(frozen=True)
class SeedResult:
    """How many deployments were written, and a sample of their keys."""

    count: int
    keys: list[Key]


def _chunk(args: tuple[str, str, str, str, int, int, int]) -> tuple[int, list[Key]]:
    bootstrap, registry_url, topic, tenant, index, count, keep_every = args
    config = GeneratorConfig(
        seed=index, lifecycle=False, namespace=f"s{index}-", properties=0.0, pipelines=48
    )
    generator = DeploymentGenerator(config)
    # Events never reach Kafka here: plain Avro. The stored values are the topic's.
    events = AvroCodec("DeploymentEvent")
    keys_codec = AvroCodec("DeploymentKey")
    stored = FramedCodec("StoredDeployment", SchemaRegistry(registry_url))
    stored.register(value_subject(topic))
    worker = WorkerSettings()
    policy = GatingPolicy(worker.gating_environment_types, worker.jira_base_url)
    producer = Producer(producer_config(GatewaySettings(kafka_bootstrap=bootstrap)))
    keys: list[Key] = []
    for n, event in enumerate(encode_events(generator, count, tenant, events)):
        if event.key is None:
            msg = "seeding: a submitted event without a key"
            raise TypeError(msg)
        decoded = events.decode(event.value)
        outcome = apply_event(None, decoded, policy)
        if not isinstance(outcome, Put):
            msg = f"seeding: expected a put, got {outcome!r}"
            raise TypeError(msg)
        value = stored.encode(outcome.value)
        while True:
            try:
                producer.produce(topic, value, event.key)
                break
            except BufferError:
                producer.poll(0.05)
        if n % keep_every == 0:
            key = keys_codec.decode(event.key)
            keys.append((key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"]))
        if n % 1000 == 0:
            producer.poll(0)
    if producer.flush(120):
        msg = "seeding: records left undelivered"
        raise RuntimeError(msg)
    return count, keys


def seed_state_topic(
    bootstrap: str,
    registry_url: str,
    topic: str,
    partitions: int,
    tenant: str,
    count: int,
    keys_wanted: int = 20_000,
    processes: int | None = None,
) -> SeedResult:
    """Create the compacted state topic ``topic`` and write ``count`` stored deployments of
    ``tenant`` to it, in parallel chunks; returns about ``keys_wanted`` of their keys."""
    ensure_topic(bootstrap, topic, partitions, 1, COMPACTED)
    chunks = []
    left, index = count, 0
    keep_every = max(1, count // keys_wanted)
    while left > 0:
        size = min(CHUNK, left)
        chunks.append((bootstrap, registry_url, topic, tenant, index, size, keep_every))
        left -= size
        index += 1
    workers = processes or min(len(chunks), os.cpu_count() or 1)
    if workers <= 1:
        results = [_chunk(c) for c in chunks]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_chunk, chunks, chunksize=1)
    keys = [k for _, chunk_keys in results for k in chunk_keys]
    return SeedResult(sum(n for n, _ in results), keys)
