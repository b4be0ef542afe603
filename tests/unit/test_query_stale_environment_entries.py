"""Stale environment entries (removals lost in a crash, which streams/deployments/queries.py
expects and promises to pass over, so that results are exact) must not change what the
pipelines and environments queries answer.

Both failed before the fix (found while writing the chaos query check): ``pipelines``
listed environments from entries without checking them, and ``environments_latest``
counted environments that have only stale entries against its per-partition ``limit``, so
an environment's latest deployment in that partition could be passed over for an older one
in another partition.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.events import deployment_deleted
from streams.deployments.index import IndexName, descending, entry_key
from streams.deployments.queries import environments_latest, pipelines
from tests.unit.test_queries import CODECS, PARTITIONS, Store, submit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def leave_stale(store: Store, pipeline: str, environment: str, number: int) -> int:
    """Store a deployment, delete it, and put its environment entry back, as a crash that
    lost the entry's removal leaves it; the deployment's partition."""
    key = submit(store, number, pipeline=pipeline, environment=environment)
    gone = deployment_deleted(CODECS, "a", pipeline, environment, number, None)
    assert gone.key == key
    store.apply(key, CODECS.event.decode(gone.value))
    partition = zlib.crc32(key) % PARTITIONS
    stale = entry_key("a", IndexName.ENVIRONMENT, (pipeline, environment), descending(number), key)
    store.dbs[partition][1][stale] = b""
    return partition


def partition_of(pipeline: str, environment: str, number: int) -> int:
    return zlib.crc32(CODECS.encode_key("a", pipeline, environment, number)) % PARTITIONS


def test_a_stale_environment_entry_lists_no_environment_in_pipelines(store: Store) -> None:
    submit(store, 1, pipeline="web", environment="prod")
    leave_stale(store, "web", "qa", 7)
    latest = environments_latest(store.data(), "a", "web", None, 10)
    assert [i.value["key"]["environmentId"] for i in latest] == ["prod"]  # passed over here
    listed = pipelines(store.data(), "a", None, 10)
    assert [i.value for i in listed] == [{"pipelineId": "web", "environments": ["prod"]}]


def test_stale_environments_do_not_hide_an_environments_latest_deployment(store: Store) -> None:
    # The latest deployment of "prod" and an older one, in different partitions.
    latest = next(n for n in range(100, 200) if partition_of("web", "prod", n) == 0)
    older = next(n for n in range(1, 100) if partition_of("web", "prod", n) == 1)
    submit(store, latest, pipeline="web", environment="prod")
    submit(store, older, pipeline="web", environment="prod")
    # Two environments sorting before "prod" with only stale entries in partition 0.
    for environment in ("dev", "qa"):
        number = next(n for n in range(1, 100) if partition_of("web", environment, n) == 0)
        assert leave_stale(store, "web", environment, number) == 0
    # limit 2: what a worker is asked for a page of one (the gateway asks for one more).
    found = environments_latest(store.data(), "a", "web", None, 2)
    assert [
        (i.value["key"]["environmentId"], i.value["key"]["deploymentSequenceNumber"]) for i in found
    ] == [("prod", latest)]
