"""Queries read pages from the indexes of real RocksDB partitions: ordered as promised,
paginated without gaps or repeats, one tenant only, stale entries passed over."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from rocksdict import Options, Rdict, WriteBatch

from gateway.events import EventCodecs, deployment_deleted, deployment_submitted
from gateway.validation import ItemRejected, validate_deployment
from schemas import AvroCodec
from streams.deployments.applier import DeploymentApplier
from streams.deployments.batch import PartitionBatch
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import IndexName, descending, entry_key
from streams.deployments.queries import (
    Item,
    PartitionData,
    environment_history,
    environments_latest,
    issue_deployments,
    pipelines,
)
from streams.deployments.renderings import FamilyOptions, Renderer
from streams.deployments.writer import write_local
from streams.metrics import WorkerMetrics
from tests.e2e.test_deployments_api import deployment

CODEC = AvroCodec("StoredDeployment")
CODECS = EventCodecs(AvroCodec("DeploymentEvent"))
APPLIER = DeploymentApplier(GatingPolicy(frozenset(), "https://j"), WorkerMetrics())
PARTITIONS = 3


class Store:
    """Partitions of state and index databases, written as the worker writes them."""

    def __init__(self, root: Path, renderer: Renderer | None = None) -> None:
        self.renderer = renderer
        self.dbs = [
            (
                Rdict(str(root / f"state-{p}"), Options(raw_mode=True)),
                Rdict(str(root / f"index-{p}"), Options(raw_mode=True)),
            )
            for p in range(PARTITIONS)
        ]
        self.offset = 0

    def apply(self, key: bytes, event: dict[str, Any]) -> None:
        partition = zlib.crc32(key) % PARTITIONS
        state, index = self.dbs[partition]
        batch = PartitionBatch(partition, state, index, CODEC.encode, CODEC.decode, 1_000_000, b"")
        batch.begin(self.offset)
        APPLIER.apply(batch, key, event)
        self.offset += 1
        write_local(
            batch,
            state,
            index,
            self.offset,
            self.offset,
            lambda: WriteBatch(raw_mode=True),
            self.renderer,
        )

    def data(self) -> list[PartitionData]:
        """The partitions as queries read them: with the kept listings when the store
        writes them."""
        return [
            PartitionData(
                state,
                index,
                CODEC.decode,
                None if self.renderer is None else self.renderer.listings(state),
            )
            for state, index in self.dbs
        ]

    def close(self) -> None:
        for state, index in self.dbs:
            state.close()
            index.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def submit(
    store: Store,
    number: int,
    *,
    tenant: str = "a",
    pipeline: str = "p",
    environment: str = "e",
    usn: int = 1,
    issues: list[str] | None = None,
    minute: int = 0,
) -> bytes:
    """Apply a full submission, built and encoded as the gateway does; its key."""
    body = deployment(
        number=number,
        usn=usn,
        issueKeys=issues or ["OPS-1"],
        lastUpdated=f"2026-01-01T00:{minute:02d}:00Z",
        pipeline={"id": pipeline, "displayName": pipeline, "url": "https://ci.example.com"},
        environment={"id": environment, "displayName": environment, "type": "testing"},
    )
    validated = validate_deployment(orjson.dumps(body))
    assert not isinstance(validated, ItemRejected), validated
    event = deployment_submitted(CODECS, tenant, validated, {}, None)
    store.apply(event.key, CODECS.event.decode(event.value))
    return event.key


def numbers(items: list[Item]) -> list[int]:
    return [
        orjson.loads(item.rendered)["deploymentSequenceNumber"]
        if item.rendered is not None
        else item.value["key"]["deploymentSequenceNumber"]
        for item in items
    ]


def pages(read: Any, limit: int) -> list[list[int]]:
    found, after = [], None
    while True:
        page = read(after, limit)
        if not page:
            return found
        found.append(numbers(page))
        after = page[-1].sort


def test_an_issues_deployments_come_newest_first_page_by_page(store: Store) -> None:
    for number in range(1, 11):
        submit(store, number, issues=["ABC-1"], minute=number)
    submit(store, 11, issues=["ABC-2"], minute=30)
    submit(store, 12, tenant="b", issues=["ABC-1"], minute=40)
    read = lambda after, limit: issue_deployments(store.data(), "a", "ABC-1", after, limit)  # noqa: E731
    assert pages(read, 4) == [[10, 9, 8, 7], [6, 5, 4, 3], [2, 1]]


def test_an_update_moves_a_deployment_and_a_delete_removes_it(store: Store) -> None:
    submit(store, 1, issues=["ABC-1"], minute=1)
    submit(store, 2, issues=["ABC-1"], minute=2)
    submit(store, 1, usn=2, issues=["ABC-1"], minute=3)  # newer: first now
    assert numbers(issue_deployments(store.data(), "a", "ABC-1", None, 10)) == [1, 2]
    gone = deployment_deleted(CODECS, "a", "p", "e", 2, None)
    store.apply(gone.key, CODECS.event.decode(gone.value))
    assert numbers(issue_deployments(store.data(), "a", "ABC-1", None, 10)) == [1]


def test_an_environments_history_comes_highest_number_first(store: Store) -> None:
    for number in (5, 1, 9, 3, 7):
        submit(store, number, environment="prod")
    submit(store, 8, environment="staging")
    read = lambda after, limit: environment_history(store.data(), "a", "p", "prod", after, limit)  # noqa: E731
    assert pages(read, 2) == [[9, 7], [5, 3], [1]]


def test_each_environment_shows_its_latest_deployment(store: Store) -> None:
    for number in (1, 2, 3):
        submit(store, number, environment="prod")
    for number in (4, 6, 5):
        submit(store, number, environment="qa")
    submit(store, 9, pipeline="other", environment="prod")
    latest = environments_latest(store.data(), "a", "p", None, 10)
    assert {i.value["key"]["environmentId"]: numbers([i])[0] for i in latest} == {
        "prod": 3,
        "qa": 6,
    }
    first = environments_latest(store.data(), "a", "p", None, 1)
    rest = environments_latest(store.data(), "a", "p", first[0].sort, 10)
    assert len(first) == 1 and len(rest) == 1
    assert first[0].sort != rest[0].sort


def test_pipelines_are_listed_once_with_their_environments(store: Store) -> None:
    for number, (pipeline, environment) in enumerate(
        [("web", "prod"), ("web", "qa"), ("api", "prod"), ("web", "prod"), ("mobile", "dev")]
    ):
        submit(store, number, pipeline=pipeline, environment=environment)
    submit(store, 99, tenant="b", pipeline="secret")
    listed = pipelines(store.data(), "a", None, 10)
    assert {i.value["pipelineId"]: i.value["environments"] for i in listed} == {
        "web": ["prod", "qa"],
        "api": ["prod"],
        "mobile": ["dev"],
    }
    first = pipelines(store.data(), "a", None, 2)
    rest = pipelines(store.data(), "a", first[-1].sort, 2)
    assert [i.value["pipelineId"] for i in first + rest] == [i.value["pipelineId"] for i in listed]


def test_an_entry_its_deployment_no_longer_carries_is_passed_over(store: Store) -> None:
    key = submit(store, 1, issues=["ABC-1"], minute=1)
    stale = entry_key("a", IndexName.ISSUE, ("ABC-9",), descending(0), key)
    for _, index in store.dbs:
        index[stale] = b""  # a removal a crash lost
    assert issue_deployments(store.data(), "a", "ABC-9", None, 10) == []


@pytest.mark.parametrize("kept", [False, True], ids=["decoded", "kept listings"])
@pytest.mark.parametrize("limit", [1, 4, 7, 50])
def test_pages_among_stale_entries_are_full_in_order_and_without_gaps(
    tmp_path: Path, kept: bool, limit: int
) -> None:
    sizes = FamilyOptions(1 << 20, 2, 1 << 20)
    store = Store(tmp_path, Renderer(CODEC.decode, b"schema", sizes) if kept else None)
    try:
        for number in range(1, 13):
            submit(store, number, issues=["ABC-1"], minute=number)
        elsewhere = [submit(store, 100 + n, issues=["ABC-2"], minute=n) for n in range(1, 13)]
        # Removals a crash lost, ranked between the current entries (30 s later than each),
        # in every partition: their deployments are stored elsewhere or no longer name ABC-1.
        for minute, key in enumerate(elsewhere, start=1):
            between = datetime(2026, 1, 1, 0, minute, 30, tzinfo=UTC)
            rank = descending(int(between.timestamp() * 1000))
            for _, index in store.dbs:
                index[entry_key("a", IndexName.ISSUE, ("ABC-1",), rank, key)] = b""

        def read(after: bytes | None, size: int) -> list[Item]:
            page = issue_deployments(store.data(), "a", "ABC-1", after, size)
            assert len(page) <= size
            return page

        found = pages(read, limit)
        assert [len(page) for page in found[:-1]] == [limit] * (len(found) - 1)
        assert [n for page in found for n in page] == list(range(12, 0, -1))
    finally:
        store.close()
