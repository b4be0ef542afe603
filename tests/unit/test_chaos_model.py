"""The chaos runs' reference model predicts what the worker's own apply rule stores, and its
histories are adversarial (late, equal and huge sequence numbers)."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.load import _links, _submission
from chaos.model import (
    BIG_SEQUENCE_BASE,
    DeleteByKey,
    DeleteByProperties,
    HistoryConfig,
    Key,
    LaneHistory,
    LaneModel,
    Outcome,
    State,
    Submit,
    SubmitItem,
)
from chaos.verify import _mismatch
from deploystream.load import DeploymentGenerator, GeneratorConfig
from gateway.validation import parse_submission
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import issue_keys_of
from streams.deployments.records import (
    DELETED,
    SUBMITTED,
    Delete,
    Put,
    apply_event,
    matches_properties,
)

POLICY = GatingPolicy(frozenset({"production"}), "https://jira.example.com")
Stored = dict[str, Any]


def _event(key: Key, payload: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    fields = {"tenant": "t", "pipelineId": key.pipeline, "environmentId": key.environment}
    return {
        "eventId": "e",
        "recordedAt": 0,
        "key": {**fields, "deploymentSequenceNumber": key.number},
        "payload": payload,
    }


def _apply(table: dict[Key, Stored], key: Key, event: dict[str, Any]) -> None:
    outcome = apply_event(table.get(key), event, POLICY)
    if isinstance(outcome, Put):
        table[key] = outcome.value
    elif isinstance(outcome, Delete):
        table.pop(key, None)


def worker_table(operations: list[Any]) -> dict[Key, Stored]:
    """What the worker's apply rule stores for ``operations``, all acknowledged, in order."""
    table: dict[Key, Stored] = {}
    for operation in operations:
        if isinstance(operation, Submit):
            for item in operation.items:
                deployment = {
                    "updateSequenceNumber": item.usn,
                    "displayName": item.name,
                    "commands": None,
                    **_links(item),
                }
                payload = {
                    "deployment": deployment,
                    "properties": dict(operation.properties),
                    "providerMetadata": None,
                }
                _apply(table, item.key, _event(item.key, (SUBMITTED, payload)))
        elif isinstance(operation, DeleteByKey):
            payload = {"updateSequenceNumber": operation.limit}
            _apply(table, operation.key, _event(operation.key, (DELETED, payload)))
        else:
            properties = dict(operation.properties)
            for key in [k for k, v in table.items() if k.lane == operation.lane]:
                if matches_properties(table[key], properties, operation.limit):
                    del table[key]
    return table


def as_state(stored: Stored | None) -> State | None:
    if stored is None:
        return None
    deployment = stored["deployment"]
    properties = tuple(sorted(stored["properties"].items()))
    # The issues the worker's index files the deployment under.
    issues = tuple(sorted(issue_keys_of(deployment)))
    return State(deployment["updateSequenceNumber"], deployment["displayName"], properties, issues)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), lane=st.integers(0, 3), steps=st.integers(1, 150))
def test_model_of_acknowledged_operations_is_what_the_worker_stores(
    seed: int, lane: int, steps: int
) -> None:
    config = HistoryConfig(keys_per_lane=5, delete_by_properties_ratio=0.1)
    history = LaneHistory(lane, seed, config)
    operations = []
    for _ in range(steps):
        operation = history.next()
        assert operation is not None
        history.model.record(operation, Outcome.ACKED)
        operations.append(operation)
    table = worker_table(operations)
    for key in history.keys:
        assert history.model.states(key) == {as_state(table.get(key))}, key


KEY = Key(0, 1)
OLD = State(5, "old", ())


def test_unknown_operation_allows_both_outcomes_and_refused_one_changes_nothing() -> None:
    model = LaneModel()
    model.record(Submit((SubmitItem(KEY, 5, "old"),), ()), Outcome.ACKED)
    model.record(Submit((SubmitItem(KEY, 6, "new"),), ()), Outcome.UNKNOWN)
    assert model.states(KEY) == {OLD, State(6, "new", ())}
    model.record(DeleteByKey(KEY, None), Outcome.NOT_APPLIED)
    assert model.states(KEY) == {OLD, State(6, "new", ())}
    model.record(DeleteByKey(KEY, 5), Outcome.ACKED)
    assert model.states(KEY) == {None, State(6, "new", ())}


def test_delete_by_properties_touches_matching_keys_within_the_limit_only() -> None:
    other = Key(0, 2)
    model = LaneModel()
    model.record(Submit((SubmitItem(KEY, 5, "a"),), (("batch", "b1"),)), Outcome.ACKED)
    model.record(Submit((SubmitItem(other, 9, "b"),), (("batch", "b1"),)), Outcome.ACKED)
    model.record(DeleteByProperties(0, (("batch", "b2"),), None), Outcome.ACKED)
    assert model.states(KEY) != {None}
    model.record(DeleteByProperties(0, (("batch", "b1"),), 6), Outcome.ACKED)
    assert model.states(KEY) == {None}
    assert model.states(other) == {State(9, "b", (("batch", "b1"),))}


def test_histories_carry_late_equal_and_huge_sequence_numbers() -> None:
    history = LaneHistory(1, seed=3, config=HistoryConfig(keys_per_lane=5))
    seen: dict[Key, list[int]] = {}
    for _ in range(400):
        operation = history.next()
        if isinstance(operation, Submit):
            for item in operation.items:
                seen.setdefault(item.key, []).append(item.usn)
    numbers = [n for ns in seen.values() for n in ns]
    assert min(numbers) > BIG_SEQUENCE_BASE - 10  # odd lanes count from 2**53
    assert any(b < a for ns in seen.values() for a, b in pairwise(ns))
    assert any(b == a for ns in seen.values() for a, b in pairwise(ns))


def test_mismatches_are_named_by_what_went_wrong() -> None:
    new = State(6, "new", ())
    assert _mismatch(KEY, OLD, {OLD, new}) is None
    assert _mismatch(KEY, None, {OLD}).kind == "lost"  # type: ignore[union-attr]
    assert _mismatch(KEY, OLD, {new}).kind == "stale"  # type: ignore[union-attr]
    assert _mismatch(KEY, OLD, {None}).kind == "resurrected"  # type: ignore[union-attr]
    assert _mismatch(KEY, State(6, "other", ()), {new}).kind == "wrong"  # type: ignore[union-attr]


def test_submissions_are_generated_payloads_with_the_models_keys_numbers_and_names() -> None:
    history = LaneHistory(1, seed=4, config=HistoryConfig(keys_per_lane=5))
    payloads = DeploymentGenerator(GeneratorConfig(seed=4))
    submits = [op for op in (history.next() for _ in range(200)) if isinstance(op, Submit)]
    assert submits
    for submit in submits:
        body = _submission(submit, payloads)
        parsed = parse_submission(orjson.dumps(body), max_deployments=100)
        assert parsed.rejected == ()
        assert body["properties"] == dict(submit.properties)
        for item, sent in zip(submit.items, body["deployments"], strict=True):
            assert DeploymentGenerator.key_of(sent) == (
                item.key.pipeline,
                item.key.environment,
                item.key.number,
            )
            assert int(sent["updateSequenceNumber"]) == item.usn
            assert sent["displayName"] == item.name


def test_submissions_name_exactly_their_items_issues_in_every_way_a_deployment_can() -> None:
    history = LaneHistory(2, seed=5, config=HistoryConfig(keys_per_lane=9))
    payloads = DeploymentGenerator(GeneratorConfig(seed=5))
    items = [
        item
        for op in (history.next() for _ in range(300))
        if isinstance(op, Submit)
        for item in op.items
    ]
    assert {item.key.environment for item in items} == {"prod", "prod-2", "prod-3"}
    routes: set[str] = set()
    for item in items:
        sent = _submission(Submit((item,), ()), payloads)["deployments"][0]
        assert tuple(sorted(issue_keys_of(sent))) == item.issues
        # Whole seconds: different lanes' deployments often tie.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent["lastUpdated"])
        if sent.get("issueKeys"):
            routes.add("top-level issueKeys")
        routes.update(a["associationType"] for a in sent["associations"])
    assert routes == {"top-level issueKeys", "issueKeys", "issueIdOrKeys", "commit"}
    assert any(not item.issues for item in items)
    assert any("-" not in issue for item in items for issue in item.issues)  # numeric ids
