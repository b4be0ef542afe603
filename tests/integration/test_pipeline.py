"""Walking skeleton: an Avro event from the gateway's producer reaches the RocksDB table of a
real worker process and is read back through the worker's web view."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploystream.kafka.broker import free_port
from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from deploystream.stack import ServiceProcess, StackConfig, worker_process
from gateway.events import EventCodecs, deployment_deleted, deployment_submitted
from gateway.producer import EventProducer
from gateway.settings import GatewaySettings
from gateway.validation import DeploymentData
from schemas.registry import FramedCodec, SchemaRegistry, value_subject
from streams.internal_auth import INTERNAL_SECRET_HEADER
from streams.topics import ensure_topic


def _deployment(usn: int, name: str) -> DeploymentData:
    return msgspec.convert(
        {
            "deploymentSequenceNumber": 42,
            "updateSequenceNumber": usn,
            "displayName": name,
            "url": "https://ci/1",
            "description": "d",
            "lastUpdated": "2026-01-01T00:00:00Z",
            "state": "successful",
            "issueKeys": ["OPS-1"],
            "pipeline": {"id": "pipe", "displayName": "P", "url": "https://ci"},
            "environment": {"id": "prod", "displayName": "Prod", "type": "production"},
        },
        DeploymentData,
    )


@pytest.fixture(scope="module")
def worker(
    kafka: ProvidedBroker,
    schema_registry: ProvidedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StackConfig, ServiceProcess]]:
    tmp = tmp_path_factory.mktemp("pipeline")
    config = StackConfig(
        bootstrap=kafka.bootstrap,
        registry_url=schema_registry.url,
        gateway_port=0,
        worker_ports=[free_port()],
        data_dir=tmp / "data",
        log_dir=tmp / "logs",
        topic=f"skeleton-{tmp.name[-8:]}",
        app_id=f"skeleton-{tmp.name[-8:]}",
    )
    ensure_topic(kafka.bootstrap, config.topic, config.partitions, 1)
    process = worker_process(config).start()
    try:
        process.wait_ready(120)
    except Exception:
        process.stop()
        print(Path(process.log_path).read_text()[-4000:])
        raise
    yield config, process
    assert process.stop() == 0, "the worker should exit cleanly on SIGTERM"


def _gateway_producer(
    kafka: ProvidedBroker, config: StackConfig
) -> tuple[EventCodecs, EventProducer]:
    """The gateway's event codecs and a started producer, on the worker's input topic."""
    settings = GatewaySettings(kafka_bootstrap=kafka.bootstrap, deployments_topic=config.topic)
    with SchemaRegistry(config.registry_url) as registry:
        event = FramedCodec("DeploymentEvent", registry)
        event.register(value_subject(config.topic))
    producer = EventProducer(settings)
    producer.start()
    return EventCodecs(event), producer


def _lookup(config: StackConfig, key: bytes) -> httpx.Response:
    encoded = base64.urlsafe_b64encode(key).decode()
    return httpx.get(
        f"http://127.0.0.1:{config.worker_ports[0]}/internal/deployments",
        params={"key": encoded},
        headers={INTERNAL_SECRET_HEADER: config.internal_secret},
        timeout=10,
    )


def _wait(
    config: StackConfig, key: bytes, predicate: Callable[[httpx.Response], bool]
) -> httpx.Response:
    deadline = time.monotonic() + 30
    response = _lookup(config, key)
    while not predicate(response) and time.monotonic() < deadline:
        time.sleep(0.1)
        response = _lookup(config, key)
    return response


async def test_produced_event_is_applied_and_readable_through_the_worker(
    kafka: ProvidedBroker, worker: tuple[StackConfig, ServiceProcess]
) -> None:
    config, _ = worker
    codecs, producer = _gateway_producer(kafka, config)
    try:
        key = codecs.encode_key("tenant-a", "pipe", "prod", 42)
        await producer.send(
            config.topic,
            [deployment_submitted(codecs, "tenant-a", _deployment(2, "two"), {"team": "x"}, None)],
        )
        found = _wait(config, key, lambda r: r.status_code == 200)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["deployment"]["displayName"] == "two"
        assert body["deployment"]["updateSequenceNumber"] == 2
        assert body["properties"] == {"team": "x"}

        # An older update is applied after the newer one and changes nothing.
        await producer.send(
            config.topic,
            [deployment_submitted(codecs, "tenant-a", _deployment(1, "one"), {}, None)],
        )
        await producer.send(
            config.topic,
            [deployment_submitted(codecs, "tenant-a", _deployment(3, "three"), {}, None)],
        )
        latest = _wait(
            config,
            key,
            lambda r: r.status_code == 200 and r.json()["deployment"]["displayName"] == "three",
        )
        assert latest.json()["deployment"]["updateSequenceNumber"] == 3

        # Another tenant's identical triple is a different key.
        other = codecs.encode_key("tenant-b", "pipe", "prod", 42)
        assert _lookup(config, other).status_code == 404

        await producer.send(
            config.topic, [deployment_deleted(codecs, "tenant-a", "pipe", "prod", 42, None)]
        )
        gone = _wait(config, key, lambda r: r.status_code == 404)
        assert gone.status_code == 404
    finally:
        producer.close()


def test_worker_serves_health_readiness_and_metrics(
    worker: tuple[StackConfig, ServiceProcess],
) -> None:
    config, _ = worker
    base = f"http://127.0.0.1:{config.worker_ports[0]}"
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"{base}/metrics").text
    assert "deploystream_worker_events_total" in metrics


def _histograms(base: str) -> dict[tuple[str, str], float]:
    """(sample name, stage label) -> value of the worker's histogram counts."""
    found = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            if sample.name.endswith("_count"):
                found[sample.name, sample.labels.get("stage", "")] = sample.value
    return found


async def test_worker_times_each_batch_and_each_records_apply_lag(
    kafka: ProvidedBroker, worker: tuple[StackConfig, ServiceProcess]
) -> None:
    config, _ = worker
    base = f"http://127.0.0.1:{config.worker_ports[0]}"
    before = _histograms(base)
    codecs, producer = _gateway_producer(kafka, config)
    try:
        events = [
            deployment_submitted(codecs, "tenant-m", _deployment(1, f"m{n}"), {}, None)
            for n in range(3)
        ]
        await producer.send(config.topic, events)
    finally:
        producer.close()
    lag = "deploystream_worker_apply_lag_seconds_count", ""
    deadline = time.monotonic() + 30
    after = _histograms(base)
    while after.get(lag, 0) - before.get(lag, 0) < len(events) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        after = _histograms(base)
    assert after.get(lag, 0) - before.get(lag, 0) == len(events)
    batches = after["deploystream_worker_batch_events_count", ""] - before.get(
        ("deploystream_worker_batch_events_count", ""), 0
    )
    assert 1 <= batches <= len(events)
    stages = "deploystream_worker_batch_seconds_count"
    for stage in ("apply", "deliver", "write"):
        assert after[stages, stage] - before.get((stages, stage), 0) == batches


def test_debug_endpoints_that_expose_table_data_are_disabled(
    worker: tuple[StackConfig, ServiceProcess],
) -> None:
    config, _ = worker
    base = f"http://127.0.0.1:{config.worker_ports[0]}"
    assert httpx.get(f"{base}/table/").status_code == 404
    assert httpx.get(f"{base}/router/").status_code == 404


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address_hex, port_hex = local.split(":")
            # /proc prints each 32-bit word of the address in host (little-endian) order.
            raw = bytes.fromhex(address_hex)
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return found


def test_worker_listens_only_on_the_configured_host(
    worker: tuple[StackConfig, ServiceProcess],
) -> None:
    config, process = worker
    assert process.process is not None
    # DEPLOYSTREAM_WORKER_HOST defaults to 127.0.0.1: nothing else may accept connections.
    assert _listening_addresses(process.process.pid) == {("127.0.0.1", config.worker_ports[0])}
