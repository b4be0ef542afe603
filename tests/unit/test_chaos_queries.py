"""The chaos verifier's query check: what each query must answer follows from the lookups in
the order the worker's indexes give, every page is walked, and each way an answer can be
wrong is named."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.model import Key, LaneModel, Outcome, Submit, SubmitItem
from chaos.queries import (
    DEPLOYMENT_PAGE,
    LIST_PAGE,
    Q,
    Query,
    Walk,
    compare,
    expected_queries,
    issue_mismatches,
    listed,
    named_issues,
    walk,
)
from streams.deployments.queries import (
    environment_history,
    environments_latest,
    issue_deployments,
    pipelines,
)
from streams.deployments.views import render_listed
from tests.unit.test_queries import CODEC, PARTITIONS, Store, submit

TENANT = "a"


def body(number: int, *, usn: int = 1, minute: int = 0, issues: tuple[str, ...] = ()) -> Any:
    return {
        "deploymentSequenceNumber": number,
        "updateSequenceNumber": usn,
        "displayName": f"#{number} v{usn}",
        "lastUpdated": f"2026-01-01T00:{minute:02d}:00Z",
        "issueKeys": list(issues),
    }


def by_kind(queries: list[Query], kind: str) -> dict[str, list[Any]]:
    return {q.name: q.expected for q in queries if q.kind == kind}


def test_expected_answers_follow_from_the_lookups() -> None:
    web, api = Key(1, 5, "prod"), Key(2, 1, "qa")
    bodies = {
        web: body(5, minute=3, issues=("OPS-1",)),
        Key(1, 9, "prod"): body(9, minute=1, issues=("OPS-1", "OPS-2")),
        Key(1, 2, "dev"): None,  # deleted: its environment has nothing now
        api: body(1, minute=7, issues=("OPS-1",)),
    }
    queries = expected_queries(TENANT, bodies, bodies, ("OPS-1", "OPS-3"))
    history = by_kind(queries, "history")
    prefix = f"{Q}/pipelines/chaos-1/environments"
    page = f"?limit={DEPLOYMENT_PAGE}"
    assert [r["deploymentSequenceNumber"] for r in history[f"{prefix}/prod/deployments{page}"]] == [
        9,
        5,
    ]
    assert history[f"{prefix}/dev/deployments{page}"] == []
    latest = by_kind(queries, "environments")[f"{prefix}?limit={LIST_PAGE}"]
    assert latest == [listed(Key(1, 9, "prod"), bodies[Key(1, 9, "prod")])]
    assert latest[0]["pipelineId"] == "chaos-1"
    assert latest[0]["environmentId"] == "prod"
    listing = by_kind(queries, "pipelines")
    assert listing[f"{Q}/pipelines"] == [
        {"pipelineId": "chaos-1", "environments": ["prod"]},
        {"pipelineId": "chaos-2", "environments": ["qa"]},
    ]
    assert listing[f"{Q}/pipelines?limit={LIST_PAGE}"] == listing[f"{Q}/pipelines"]
    issues = by_kind(queries, "issue")
    name = f"{Q}/issues/%s/deployments?limit={DEPLOYMENT_PAGE}"
    assert [r["deploymentSequenceNumber"] for r in issues[name % "OPS-1"]] == [1, 5, 9]
    assert [r["deploymentSequenceNumber"] for r in issues[name % "OPS-2"]] == [9]
    assert issues[name % "OPS-3"] == []  # used by the load, named by nothing stored now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def test_expected_orders_are_the_orders_of_the_workers_indexes(store: Store) -> None:
    """Ties of lastUpdated, numbers whose Avro bytes sort otherwise than their values, ids of
    different lengths: the verifier's orders (computed on its own) match the index."""
    placed = [
        (1, "prod", 64),
        (1, "prod", 128),
        (1, "prod", 65),
        (1, "prod", 2),
        (10, "aa", 3),
        (2, "b", 7),
        (1, "ccc", 4),
        (1, "b", 1),
    ]
    bodies = {}
    for lane, environment, number in placed:
        raw = submit(
            store,
            number,
            tenant=TENANT,
            pipeline=f"chaos-{lane}",
            environment=environment,
            issues=["OPS-7"],
            minute=5 if number != 1 else 9,
        )
        held = store.dbs[zlib.crc32(raw) % PARTITIONS][0].get(raw)
        assert held is not None
        stored = CODEC.decode(held)
        shown = render_listed(stored)
        del shown["pipelineId"], shown["environmentId"]
        bodies[Key(lane, number, environment)] = shown
    queries = expected_queries(TENANT, bodies, bodies, ["OPS-7"])
    data = store.data()

    def values(items: Any) -> list[Any]:
        return [render_listed(item.value) for item in items]

    expected_issue = by_kind(queries, "issue")[f"{Q}/issues/OPS-7/deployments?limit=7"]
    assert expected_issue == values(issue_deployments(data, TENANT, "OPS-7", None, 100))
    # Equal lastUpdated: by the keys' length, then bytes; not by number (64 128 65).
    assert [r["deploymentSequenceNumber"] for r in expected_issue] == [1, 7, 4, 3, 2, 64, 128, 65]
    expected_latest = by_kind(queries, "environments")[
        f"{Q}/pipelines/chaos-1/environments?limit=2"
    ]
    assert expected_latest == values(environments_latest(data, TENANT, "chaos-1", None, 100))
    assert [r["environmentId"] for r in expected_latest] == ["b", "ccc", "prod"]
    path = f"{Q}/pipelines/chaos-1/environments/prod/deployments?limit={DEPLOYMENT_PAGE}"
    history = by_kind(queries, "history")[path]
    assert history == values(environment_history(data, TENANT, "chaos-1", "prod", None, 100))
    listing = by_kind(queries, "pipelines")[f"{Q}/pipelines"]
    assert listing == [item.value for item in pipelines(data, TENANT, None, 100)]
    assert [p["pipelineId"] for p in listing] == ["chaos-1", "chaos-2", "chaos-10"]


def pager(rows: list[Any], size: int, cursors: list[str] | None = None) -> Any:
    """A fake API: ``rows`` in pages of ``size`` with cursors, recording each request."""
    seen: list[dict[str, str]] = []

    def fetch(path: str, params: dict[str, str]) -> tuple[int, Any]:
        seen.append(dict(params))
        start = int(params.get("cursor", "0"))
        end = start + size
        more = end < len(rows)
        cursor = (cursors or [])[len(seen) - 1] if cursors else str(end)
        return 200, {"values": rows[start:end], "next": cursor if more else None}

    return fetch, seen


def test_a_walk_follows_every_cursor_with_the_same_limit() -> None:
    rows = [{"n": n} for n in range(17)]
    fetch, seen = pager(rows, 7)
    walked = walk(fetch, Query("history", "/x", 7, []), max_pages=10)
    assert walked.rows == rows
    assert walked.problems == []
    assert seen == [{"limit": "7"}, {"limit": "7", "cursor": "7"}, {"limit": "7", "cursor": "14"}]
    default, asked = pager(rows, 50)
    assert walk(default, Query("pipelines", "/x", None, []), max_pages=10).pages == 1
    assert asked == [{}]


def test_a_walk_names_what_goes_wrong_with_pages() -> None:
    rows = [{"n": n} for n in range(20)]
    looping, _ = pager(rows, 7, cursors=["7", "7", "7"])
    assert "repeats an earlier cursor" in walk(looping, Query("h", "/x", 7, []), 10).problems[0]
    oversized, _ = pager(rows, 9)
    assert "holds 9 values, limit 7" in walk(oversized, Query("h", "/x", 7, []), 10).problems[0]
    endless, _ = pager(rows, 7)
    assert "after 2 pages" in walk(endless, Query("h", "/x", 7, []), 2).problems[0]

    def unavailable(path: str, params: dict[str, str]) -> tuple[int, Any]:
        return 503, "rebalance"

    assert walk(unavailable, Query("h", "/x", 7, []), 10).problems == [
        "page 1 answered 503: 'rebalance'"
    ]


def row(lane: int, number: int, environment: str = "prod", **more: Any) -> dict[str, Any]:
    return listed(Key(lane, number, environment), {"deploymentSequenceNumber": number, **more})


PLACES = {("chaos-1", "prod"), ("chaos-2", "prod")}


def kinds(query: Query, rows: list[Any]) -> list[str] | None:
    found = compare(query, Walk(rows, 1), PLACES)
    return None if found is None else found["kinds"]


def test_comparison_names_each_way_an_answer_is_wrong() -> None:
    a, b, c = row(1, 3), row(1, 2), row(2, 1)
    query = Query("issue", "/q", 7, [a, b, c])
    assert kinds(query, [a, b, c]) is None
    assert kinds(query, [a, c]) == ["missing"]
    assert kinds(query, [a, b, c, row(2, 9)]) == ["unexpected"]
    assert kinds(query, [a, b, b, c]) == ["repeated"]
    assert kinds(query, [a, row(1, 2, displayName="stale"), c]) == ["content"]
    assert kinds(query, [b, a, c]) == ["order"]
    found = compare(query, Walk([b, a, c], 1), PLACES)
    assert found is not None
    assert found["order"]["expected"][0] == repr(("chaos-1", "prod", 3))
    paging = compare(query, Walk([a, b, c], 1, ["page 2 answered 500: ''"]), PLACES)
    assert paging is not None and paging["kinds"] == ["paging"]


def test_values_of_other_runs_sharing_the_stack_are_left_out() -> None:
    a = row(1, 3)
    assert kinds(Query("issue", "/q", 7, [a]), [row(1, 3, "other-run"), a]) is None
    listing = Query("pipelines", "/p", 2, [{"pipelineId": "chaos-1", "environments": ["prod"]}])
    shared = [
        {"pipelineId": "chaos-1", "environments": ["other-run", "prod"]},
        {"pipelineId": "web", "environments": ["prod"]},
    ]
    assert kinds(listing, shared) is None
    extra = [{"pipelineId": "chaos-1", "environments": ["prod"]}, *shared[1:]]
    extra.append({"pipelineId": "chaos-2", "environments": ["prod"]})
    assert kinds(listing, extra) == ["unexpected"]


def test_issues_come_from_issue_keys_and_issue_associations_only() -> None:
    deployment = {
        "issueKeys": ["OPS-2"],
        "associations": [
            {"associationType": "issueIdOrKeys", "values": ["10001", "OPS-1"]},
            {"associationType": "issueKeys", "values": ["ops-1"]},
            {"associationType": "serviceIdOrKeys", "values": ["svc-1"]},
            {"associationType": "commit", "values": [{"repositoryId": "r", "commitHash": "c"}]},
        ],
    }
    assert named_issues(deployment) == ("10001", "OPS-1", "OPS-2", "ops-1")


def test_a_lookup_naming_other_issues_than_the_model_is_reported() -> None:
    key = Key(1, 1)
    model = LaneModel()
    model.record(Submit((SubmitItem(key, 5, "a", ("OPS-1",)),), ()), Outcome.ACKED)
    model.record(Submit((SubmitItem(key, 6, "b", ("OPS-2",)),), ()), Outcome.UNKNOWN)
    models = [([key], model)]
    good = {"updateSequenceNumber": 6, "displayName": "b", "issueKeys": ["OPS-2"]}
    assert issue_mismatches(models, {key: good}) == []
    wrong = {**good, "issueKeys": ["OPS-1"]}
    assert issue_mismatches(models, {key: wrong})[0]["expected"] == [["OPS-2"]]
    # A state the model does not know is the lookup check's to report.
    assert issue_mismatches(models, {key: {**wrong, "displayName": "z"}}) == []
