"""A worker that lost its local RocksDB rebuilds every table from Kafka: the deployments and
the property index (so delete-by-properties still works), and gating state."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

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


def test_an_upgraded_worker_rebuilds_a_missing_index_from_its_table(own_stack: Stack) -> None:
    """An installation whose index changelog is gone (one upgraded from the bucketed property
    index, which lived in another topic): the restored table's index is rebuilt first, so
    deletes by properties and queries find everything."""
    stack = own_stack
    pipeline = "upgrade"
    submitted = stack.submit(*[on(pipeline, n) for n in range(1, 21)], properties={"team": "u"})
    assert submitted.status_code == 202
    stack.wait_caught_up()

    worker = stack.workers[0]
    worker.kill()
    shutil.rmtree(stack.config.data_dir / "worker-0")
    index_topic = f"{stack.config.app_id}-deployment-index-changelog"
    admin = AdminClient({"bootstrap.servers": stack.config.bootstrap})
    admin.delete_topics([index_topic])[index_topic].result(30)
    deadline = time.monotonic() + 30
    while index_topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "the index changelog was not deleted"
        time.sleep(0.2)
    worker.start().wait_ready(120)

    history = stack.http.get(
        f"/rest/deploystream/1/pipelines/{pipeline}/environments/prod/deployments",
        params={"limit": 200},
    )
    assert history.status_code == 200
    assert len(history.json()["values"]) == 20
    assert stack.http.delete(f"{API}/bulkByProperties", params={"team": "u"}).status_code == 202
    stack.wait_caught_up()
    assert all(
        stack.http.get(stack.path(pipeline, "prod", n)).status_code == 404 for n in range(1, 21)
    )
