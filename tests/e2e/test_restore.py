"""A worker that lost its local RocksDB rebuilds every table from Kafka: the deployments and
the property index (so delete-by-properties still works), and gating state."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploystream.kafka.provision import ProvidedBroker
from deploystream.registry.provision import ProvidedRegistry
from tests.e2e.conftest import API, Stack, start_stack
from tests.e2e.test_properties_and_gating import GATED, on


@pytest.fixture
def own_stack(
    kafka: ProvidedBroker, schema_registry: ProvidedRegistry, tmp_path: Path
) -> Iterator[Stack]:
    # A short session timeout: the killed worker's group membership expires quickly.
    running = start_stack(
        kafka, schema_registry, tmp_path, partitions=4, env={"DEPLOYSTREAM_SESSION_TIMEOUT_S": "6"}
    )
    yield running
    running.http.close()
    running.stop()


def test_worker_without_its_rocksdb_restores_tables_and_index(own_stack: Stack) -> None:
    stack = own_stack
    pipeline = "restore"
    assert (
        stack.submit(*[on(pipeline, n) for n in range(1, 31)], properties={"team": "a"}).status_code
        == 202
    )
    assert (
        stack.submit(
            *[on(pipeline, n) for n in range(31, 41)], properties={"team": "b"}
        ).status_code
        == 202
    )
    assert stack.submit(on(pipeline, 41, commands=GATED)).status_code == 202
    stack.wait_caught_up()

    worker = stack.workers[0]
    worker.kill()
    shutil.rmtree(stack.config.data_dir / "worker-0")
    worker.start().wait_ready(120)

    for number in (1, 30, 31, 40, 41):
        assert stack.http.get(stack.path(pipeline, "prod", number)).status_code == 200, number
    gating = stack.http.get(stack.path(pipeline, "prod", 41) + "/gating-status").json()
    assert gating["gatingStatus"] == "awaiting"
    assert stack.http.delete(f"{API}/bulkByProperties", params={"team": "a"}).status_code == 202
    stack.wait_caught_up()
    remaining = [
        n
        for n in range(1, 41)
        if stack.http.get(stack.path(pipeline, "prod", n)).status_code == 200
    ]
    assert remaining == list(range(31, 41))
