"""Stored deployments for the lookup and restart phases, written straight to a state topic.

A worker that applies events does ~1,000 events/s here, so a million stored deployments
cannot be had by applying events within a benchmark run. The worker's table is restored
from its state topic (the changelog) instead, which is what a restart does anyway: each
record is made by the project's own code path — the gateway's event encoding, the worker's
decoding and :func:`streams.deployments.records.apply_event` of that event on an empty key,
and the table's codec (``StoredDeployment`` registered under ``<topic>-value``, framed) — so
it is byte for byte what the worker would have written.

The seeded deployments carry no request properties, so the worker's property index is
legitimately empty: the restore measured is the deployments table's. They name issues (keys
``<PROJECT>-<n>``, ``n`` up to ``issues_per_project``, and numeric ids), spread over 48
pipelines per 25,000 deployments with 5 environments each: what the query phase reads.
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
from streams.deployments.index import issue_keys_of
from streams.deployments.records import Put, apply_event
from streams.settings import WorkerSettings
from streams.topics import COMPACTED, ensure_topic

__all__ = ["SeedResult", "seed_state_topic"]

CHUNK = 25_000

Key = tuple[str, str, int]


@dataclass(frozen=True)
class SeedResult:
    """How many deployments were written, a sample of their keys, and every issue key
    (``<PROJECT>-<n>``; numeric issue ids left out) they name."""

    count: int
    keys: list[Key]
    issues: list[str]


@dataclass(frozen=True)
class _Chunk:
    """One process's share of the seeding."""

    bootstrap: str
    registry_url: str
    topic: str
    tenant: str
    index: int
    count: int
    keep_every: int
    issues_per_project: int


def _chunk(chunk: _Chunk) -> tuple[int, list[Key], set[str]]:
    config = GeneratorConfig(
        seed=chunk.index,
        lifecycle=False,
        namespace=f"s{chunk.index}-",
        properties=0.0,
        pipelines=48,
        issues_per_project=chunk.issues_per_project,
    )
    generator = DeploymentGenerator(config)
    # Events never reach Kafka here: plain Avro. The stored values are the topic's.
    events = AvroCodec("DeploymentEvent")
    keys_codec = AvroCodec("DeploymentKey")
    stored = FramedCodec("StoredDeployment", SchemaRegistry(chunk.registry_url))
    stored.register(value_subject(chunk.topic))
    worker = WorkerSettings()
    policy = GatingPolicy(worker.gating_environment_types, worker.jira_base_url)
    producer = Producer(producer_config(GatewaySettings(kafka_bootstrap=chunk.bootstrap)))
    keys: list[Key] = []
    issues: set[str] = set()
    for n, event in enumerate(encode_events(generator, chunk.count, chunk.tenant, events)):
        if event.key is None:
            msg = "seeding: a submitted event without a key"
            raise TypeError(msg)
        decoded = events.decode(event.value)
        outcome = apply_event(None, decoded, policy)
        if not isinstance(outcome, Put):
            msg = f"seeding: expected a put, got {outcome!r}"
            raise TypeError(msg)
        issues.update(i for i in issue_keys_of(outcome.value["deployment"]) if "-" in i)
        value = stored.encode(outcome.value)
        while True:
            try:
                producer.produce(chunk.topic, value, event.key)
                break
            except BufferError:
                producer.poll(0.05)
        if n % chunk.keep_every == 0:
            key = keys_codec.decode(event.key)
            keys.append((key["pipelineId"], key["environmentId"], key["deploymentSequenceNumber"]))
        if n % 1000 == 0:
            producer.poll(0)
    if producer.flush(120):
        msg = "seeding: records left undelivered"
        raise RuntimeError(msg)
    return chunk.count, keys, issues


def seed_state_topic(
    bootstrap: str,
    registry_url: str,
    topic: str,
    partitions: int,
    tenant: str,
    count: int,
    keys_wanted: int = 20_000,
    processes: int | None = None,
    issues_per_project: int = 9999,
) -> SeedResult:
    """Create the compacted state topic ``topic`` and write ``count`` stored deployments of
    ``tenant`` to it, in parallel chunks; returns about ``keys_wanted`` of their keys."""
    ensure_topic(bootstrap, topic, partitions, 1, COMPACTED)
    chunks = []
    left, index = count, 0
    keep_every = max(1, count // keys_wanted)
    while left > 0:
        size = min(CHUNK, left)
        chunks.append(
            _Chunk(
                bootstrap,
                registry_url,
                topic,
                tenant,
                index,
                size,
                keep_every,
                issues_per_project,
            )
        )
        left -= size
        index += 1
    workers = processes or min(len(chunks), os.cpu_count() or 1)
    if workers <= 1:
        results = [_chunk(c) for c in chunks]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_chunk, chunks, chunksize=1)
    keys = [k for _, chunk_keys, _ in results for k in chunk_keys]
    issues = sorted(set().union(*(chunk_issues for _, _, chunk_issues in results)))
    return SeedResult(sum(n for n, _, _ in results), keys, issues)
