"""Delete-by-properties over a large table: the property index against the same deletes sent
one key at a time, measured in one run on one worker.

``python -m bench.delete_by_properties [--stored 100000] [--matching 1000]``

1. ``--stored`` deployments are produced (bare producer, the gateway's Avro events), of which
   ``--matching`` carry ``campaign=doomed``; a worker applies them all.
2. One ``DeploymentsDeletedByProperties`` per partition is produced; timed until the worker
   has committed it (and so applied it).
3. Baseline: ``--matching`` other deployments (``campaign=doomed-2``) are deleted with one
   ``DeploymentDeleted`` each; timed the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition

from deploystream.kafka.broker import free_port
from deploystream.kafka.provision import provide_broker
from deploystream.registry.provision import provide_registry
from deploystream.stack import StackConfig, worker_process
from gateway.events import (
    EventCodecs,
    OutgoingEvent,
    deployment_deleted,
    deployment_submitted,
    deployments_deleted_by_properties,
)
from gateway.producer import producer_config
from gateway.settings import GatewaySettings
from gateway.validation import DeploymentData
from schemas.registry import FramedCodec, SchemaRegistry, value_subject
from streams.topics import ensure_topic

PARTITIONS = 8
TENANT = "bench"


def _deployment(number: int) -> DeploymentData:
    return msgspec.convert(
        {
            "deploymentSequenceNumber": number,
            "updateSequenceNumber": 1,
            "displayName": f"Deploy {number}",
            "url": "https://ci.example.com/1",
            "description": "bench",
            "lastUpdated": "2026-01-01T00:00:00Z",
            "state": "successful",
            "issueKeys": ["OPS-1"],
            "pipeline": {"id": f"pipe-{number % 97}", "displayName": "P", "url": "https://p"},
            "environment": {"id": "prod", "displayName": "Prod", "type": "production"},
        },
        DeploymentData,
    )


def _produce(producer: Producer, topic: str, events: list[OutgoingEvent]) -> None:
    for index, event in enumerate(events):
        if event.partition is None:
            producer.produce(topic, event.value, event.key)
        else:
            producer.produce(topic, event.value, event.key, partition=event.partition)
        if index % 5000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        msg = "events not delivered"
        raise RuntimeError(msg)


def _wait_committed(bootstrap: str, group: str, topic: str, timeout: float = 1800) -> float:
    """Seconds until ``group`` committed everything currently on ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    started = time.monotonic()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
        while time.monotonic() - started < timeout:
            committed = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
            if all(c >= e for c, e in zip(committed, ends, strict=True)):
                return time.monotonic() - started
            time.sleep(0.05)
    finally:
        consumer.close()
    msg = "worker did not catch up"
    raise TimeoutError(msg)


DELETED_METRIC = "deploystream_worker_deleted_by_properties_total"
DELETE_OUTCOMES = 'deploystream_worker_events_total{outcome="delete"}'


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_metric(port: int, name: str, target: float, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _metric(port, name) < target:
        if time.monotonic() > deadline:
            msg = f"{name} did not reach {target}"
            raise TimeoutError(msg)
        time.sleep(0.02)


def run(stored: int, matching: int) -> dict[str, Any]:
    """Measure both ways of deleting ``matching`` of ``stored`` deployments."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        provide_broker() as broker,
        provide_registry(broker.bootstrap) as registry,
    ):
        config = StackConfig(
            bootstrap=broker.bootstrap,
            registry_url=registry.url,
            gateway_port=0,
            worker_ports=[free_port()],
            data_dir=Path(tmp) / "data",
            log_dir=Path(tmp) / "logs",
            topic="bench-props",
            app_id="bench-props",
            partitions=PARTITIONS,
        )
        ensure_topic(broker.bootstrap, config.topic, PARTITIONS, 1)
        event = FramedCodec("DeploymentEvent", SchemaRegistry(registry.url))
        event.register(value_subject(config.topic))
        codecs = EventCodecs(event)
        producer = Producer(producer_config(GatewaySettings(kafka_bootstrap=broker.bootstrap)))
        events = []
        for number in range(stored):
            if number < matching:
                campaign = "doomed"
            elif number < 2 * matching:
                campaign = "doomed-2"
            else:
                campaign = f"keep-{number % 50}"
            properties = {"campaign": campaign, "team": f"team-{number % 20}"}
            events.append(
                deployment_submitted(codecs, TENANT, _deployment(number), properties, None)
            )
        _produce(producer, config.topic, events)
        worker = worker_process(config).start()
        try:
            worker.wait_ready(600)
            load_s = _wait_committed(broker.bootstrap, config.app_id, config.topic)
            port = config.worker_ports[0]
            by_properties = deployments_deleted_by_properties(
                codecs, TENANT, {"campaign": "doomed"}, None, PARTITIONS
            )
            started = time.monotonic()
            _produce(producer, config.topic, by_properties)
            _wait_metric(port, DELETED_METRIC, matching)
            index_s = time.monotonic() - started
            one_by_one = [
                deployment_deleted(codecs, TENANT, f"pipe-{n % 97}", "prod", n, None)
                for n in range(matching, 2 * matching)
            ]
            deletes_before = _metric(port, DELETE_OUTCOMES)
            started = time.monotonic()
            _produce(producer, config.topic, one_by_one)
            _wait_metric(port, DELETE_OUTCOMES, deletes_before + matching)
            keys_s = time.monotonic() - started
        finally:
            worker.stop()
    return {
        "stored": stored,
        "matching": matching,
        "initialApplySeconds": round(load_s, 2),
        "deleteByPropertiesSeconds": round(index_s, 3),
        "deleteByKeyBaselineSeconds": round(keys_s, 3),
        "ratio": round(keys_s / index_s, 2) if index_s else None,
        "note": "from producing the command(s) until the worker's metrics show every deletion "
        "applied; the baseline is the same number of deletes sent by key",
    }


def main() -> int:
    """Run and print JSON (also to bench/results/delete-by-properties.json)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--matching", type=int, default=1_000)
    args = parser.parse_args()
    result = run(args.stored, args.matching)
    text = json.dumps(result, indent=2)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "delete-by-properties.json").write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
