"""Cached renderings of listed deployments: the same answers as decoding, never stale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway.events import deployment_deleted
from streams.deployments.queries import (
    Item,
    PartitionData,
    PipelineMemo,
    environment_history,
    issue_deployments,
    pipelines,
)
from streams.deployments.renderings import Renderings
from streams.deployments.views import render_listed
from tests.unit.test_queries import CODEC, CODECS, Store, submit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def cached(store: Store, renderings: Renderings) -> list[PartitionData]:
    return [PartitionData(s, i, CODEC.decode, renderings) for s, i in store.dbs]


def as_json(items: list[Item]) -> list[bytes]:
    return [
        i.rendered if i.rendered is not None else orjson.dumps(render_listed(i.value or {}))
        for i in items
    ]


def test_cached_pages_are_the_decoded_pages(store: Store) -> None:
    for number in range(1, 30):
        submit(store, number, issues=["OPS-1", f"OPS-{number % 3 + 2}"], minute=number)
    renderings = Renderings(CODEC.decode, 100)
    for _ in range(2):  # cold, then warm
        for read in (
            lambda data: issue_deployments(data, "a", "OPS-1", None, 10),
            lambda data: issue_deployments(data, "a", "OPS-3", None, 50),
            lambda data: environment_history(data, "a", "p", "e", None, 7),
        ):
            assert as_json(read(cached(store, renderings))) == as_json(read(store.data()))
    assert renderings.hits > 0


def test_an_update_is_never_served_from_the_cache(store: Store) -> None:
    renderings = Renderings(CODEC.decode, 100)
    submit(store, 1, issues=["OPS-1"], usn=1, minute=1)
    assert len(issue_deployments(cached(store, renderings), "a", "OPS-1", None, 10)) == 1
    # The deployment moves to another issue: the old rendering (and its entries) is stale.
    submit(store, 1, issues=["OPS-2"], usn=2, minute=2)
    assert issue_deployments(cached(store, renderings), "a", "OPS-1", None, 10) == []
    moved = issue_deployments(cached(store, renderings), "a", "OPS-2", None, 10)
    assert [orjson.loads(i.rendered)["issueKeys"] for i in moved] == [["OPS-2"]]


def test_at_most_capacity_renderings_are_kept(store: Store) -> None:
    for number in range(1, 21):
        submit(store, number)
    renderings = Renderings(CODEC.decode, 5)
    assert len(environment_history(cached(store, renderings), "a", "p", "e", None, 20)) == 20
    assert len(renderings) == 5
    none_kept = Renderings(CODEC.decode, 0)
    assert len(environment_history(cached(store, none_kept), "a", "p", "e", None, 20)) == 20
    assert len(none_kept) == 0


def test_the_pipelines_memo_follows_every_change_of_a_partition(store: Store) -> None:
    memo = PipelineMemo()

    def listed() -> list[dict[str, object]]:
        data = [PartitionData(s, i, CODEC.decode, None, memo) for s, i in store.dbs]
        return [item.value for item in pipelines(data, "a", None, 10) if item.value]

    key = submit(store, 1, pipeline="web", environment="prod")
    assert listed() == [{"pipelineId": "web", "environments": ["prod"]}]
    assert listed() == listed()  # from the memo
    submit(store, 2, pipeline="web", environment="qa")
    submit(store, 3, pipeline="api", environment="prod")
    assert listed() == [
        {"pipelineId": "api", "environments": ["prod"]},
        {"pipelineId": "web", "environments": ["prod", "qa"]},
    ]
    store.apply(
        key, CODECS.event.decode(deployment_deleted(CODECS, "a", "web", "prod", 1, None).value)
    )
    assert listed() == [
        {"pipelineId": "api", "environments": ["prod"]},
        {"pipelineId": "web", "environments": ["qa"]},
    ]
    # Pages after a cursor come from the memo too.
    data = [PartitionData(s, i, CODEC.decode, None, memo) for s, i in store.dbs]
    first = pipelines(data, "a", None, 1)
    assert [i.value for i in pipelines(data, "a", first[0].sort, 5)] == [
        {"pipelineId": "web", "environments": ["qa"]}
    ]
