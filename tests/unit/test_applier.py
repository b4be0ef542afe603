"""The applier keeps every index entry in step with the stored deployments, and
delete-by-properties removes exactly the matching deployments of the tenant (dicts stand in
for a partition's tables)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import EventCodecs
from schemas import AvroCodec
from streams.deployments.applier import DeploymentApplier
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import (
    IndexName,
    decode_entry_key,
    entries_of,
    terms_prefix,
)
from streams.deployments.records import DELETED, DELETED_BY_PROPERTIES, SUBMITTED
from streams.metrics import WorkerMetrics

POLICY = GatingPolicy(frozenset({"production"}), "https://jira.example.com")
CODECS = EventCodecs(AvroCodec("DeploymentEvent"))
AT = datetime(2026, 1, 1, tzinfo=UTC)


class DictTables:
    """A partition's tables as dicts, recording the changelog they would write."""

    def __init__(self) -> None:
        self.state: dict[bytes, dict[str, Any]] = {}
        self.index: dict[bytes, bytes] = {}
        self.tombstones: list[bytes] = []

    def get(self, key: bytes) -> dict[str, Any] | None:
        return self.state.get(key)

    def put(self, key: bytes, value: dict[str, Any]) -> None:
        self.state[key] = value

    def delete(self, key: bytes) -> None:
        self.state.pop(key, None)
        self.tombstones.append(key)

    def index_put(self, entry: bytes) -> None:
        self.index[entry] = b""

    def index_delete(self, entry: bytes) -> None:
        self.index.pop(entry, None)

    def index_scan(self, prefix: bytes) -> Iterable[bytes]:
        return sorted(entry for entry in self.index if entry.startswith(prefix))


def key_of(tenant: str, number: int, pipeline: str = "p") -> tuple[bytes, dict[str, Any]]:
    fields = {
        "tenant": tenant,
        "pipelineId": pipeline,
        "environmentId": "e",
        "deploymentSequenceNumber": number,
    }
    return CODECS.encode_key(tenant, pipeline, "e", number), fields


def submitted(
    tenant: str,
    number: int,
    usn: int,
    properties: dict[str, str],
    issues: list[str] | None = None,
    last_updated: str = "2026-01-01T00:00:00Z",
) -> tuple[bytes, dict[str, Any]]:
    key, fields = key_of(tenant, number)
    deployment = {
        "deploymentSequenceNumber": number,
        "updateSequenceNumber": usn,
        "issueKeys": issues,
        "associations": None,
        "lastUpdated": last_updated,
        "commands": None,
        "environment": {"type": "testing"},
    }
    payload = {"deployment": deployment, "properties": properties, "providerMetadata": None}
    return key, {
        "eventId": "e",
        "recordedAt": AT,
        "tenant": tenant,
        "key": fields,
        "payload": (SUBMITTED, payload),
    }


def deleted(tenant: str, number: int) -> tuple[bytes, dict[str, Any]]:
    key, fields = key_of(tenant, number)
    return key, {
        "eventId": "d",
        "recordedAt": AT,
        "tenant": tenant,
        "key": fields,
        "payload": (DELETED, {"updateSequenceNumber": None}),
    }


def by_properties(tenant: str, properties: dict[str, str]) -> dict[str, Any]:
    payload = {
        "properties": properties,
        "updateSequenceNumber": None,
        "partition": 0,
        "partitions": 1,
    }
    return {
        "eventId": "b",
        "recordedAt": AT,
        "tenant": tenant,
        "key": None,
        "payload": (DELETED_BY_PROPERTIES, payload),
    }


def applier() -> DeploymentApplier:
    return DeploymentApplier(POLICY, WorkerMetrics())


def stored_numbers(tables: DictTables, tenant: str) -> set[int]:
    return {
        v["key"]["deploymentSequenceNumber"]
        for v in tables.state.values()
        if v["key"]["tenant"] == tenant
    }


def expected_index(tables: DictTables) -> set[bytes]:
    return {entry for key, value in tables.state.items() for entry in entries_of(key, value)}


def test_delete_by_properties_removes_only_matching_deployments_of_the_tenant() -> None:
    tables, app = DictTables(), applier()
    for number in range(10):
        team = "x" if number < 5 else "y"
        app.apply(tables, *submitted("a", number, 1, {"team": team, "env": "prod"}))
    app.apply(tables, *submitted("b", 0, 1, {"team": "x", "env": "prod"}))
    outcome = app.apply(tables, None, by_properties("a", {"team": "x", "env": "prod"}))
    assert outcome == "delete_by_properties"
    assert stored_numbers(tables, "a") == {5, 6, 7, 8, 9}
    assert stored_numbers(tables, "b") == {0}
    assert set(tables.index) == expected_index(tables)


def test_a_deployment_is_listed_under_its_properties_issues_and_environment() -> None:
    tables, app = DictTables(), applier()
    key, event = submitted("a", 7, 1, {"team": "x"}, issues=["ABC-1", "ABC-2"])
    app.apply(tables, key, event)
    listed = {decode_entry_key(entry) for entry in tables.index}
    assert {(e.name, e.terms) for e in listed} == {
        (IndexName.PROPERTY, ("team", "x")),
        (IndexName.ISSUE, ("ABC-1",)),
        (IndexName.ISSUE, ("ABC-2",)),
        (IndexName.ENVIRONMENT, ("p", "e")),
    }
    assert {e.deployment for e in listed} == {key}
    assert {e.tenant for e in listed} == {"a"}


def test_index_entries_disappear_with_their_deployment() -> None:
    tables, app = DictTables(), applier()
    app.apply(tables, *submitted("a", 1, 1, {"team": "x"}, issues=["ABC-1"]))
    assert tables.index
    app.apply(tables, *deleted("a", 1))
    assert tables.index == {}


def test_an_update_moves_the_deployment_in_the_index() -> None:
    tables, app = DictTables(), applier()
    app.apply(tables, *submitted("a", 1, 1, {"team": "x"}, issues=["ABC-1"]))
    app.apply(tables, *submitted("a", 1, 2, {"team": "y"}, issues=["ABC-2"]))
    assert set(tables.index) == expected_index(tables)
    app.apply(tables, None, by_properties("a", {"team": "x"}))
    assert stored_numbers(tables, "a") == {1}
    app.apply(tables, None, by_properties("a", {"team": "y"}))
    assert stored_numbers(tables, "a") == set()
    assert tables.index == {}


def test_an_older_or_identical_update_writes_no_index_entry() -> None:
    tables, app = DictTables(), applier()
    key, event = submitted("a", 1, 5, {"team": "x"})
    app.apply(tables, key, event)
    tables.index.clear()
    assert app.apply(tables, *submitted("a", 1, 4, {"team": "y"})) == "keep"
    assert app.apply(tables, key, event) == "put"  # identical: re-written as it is
    assert tables.index == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("submit"), st.integers(0, 5), st.integers(0, 3), st.sampled_from(["x", "y"])
            ),
            st.tuples(st.just("delete"), st.integers(0, 5), st.just(0), st.just("")),
            st.tuples(st.just("by"), st.just(0), st.just(0), st.sampled_from(["x", "y"])),
        ),
        max_size=40,
    )
)
def test_index_always_lists_exactly_the_stored_deployments(
    ops: list[tuple[str, int, int, str]],
) -> None:
    tables, app = DictTables(), applier()
    for kind, number, usn, team in ops:
        if kind == "submit":
            issues = [f"ABC-{usn}"] if usn else None
            app.apply(tables, *submitted("a", number, usn, {"team": team}, issues=issues))
        elif kind == "delete":
            app.apply(tables, *deleted("a", number))
        else:
            app.apply(tables, None, by_properties("a", {"team": team}))
    assert set(tables.index) == expected_index(tables)


def test_lost_index_writes_are_re_derived_from_the_stored_deployment() -> None:
    tables, app = DictTables(), applier()
    key, event = submitted("a", 1, 1, {"team": "x"})
    app.apply(tables, key, event)
    tables.index.clear()  # the index changelog lost this write; the table's survived
    app.ensure_indexed(tables, key)
    assert set(tables.index) == expected_index(tables)
    app.apply(tables, None, by_properties("a", {"team": "x"}))
    assert stored_numbers(tables, "a") == set()


def test_delete_by_properties_drops_entries_of_absent_deployments() -> None:
    tables, app = DictTables(), applier()
    key, event = submitted("a", 1, 1, {"team": "x"})
    app.apply(tables, key, event)
    del tables.state[key]  # its tombstone was delivered, its index removals were not
    app.apply(tables, None, by_properties("a", {"team": "x"}))
    prefix = terms_prefix("a", IndexName.PROPERTY, ("team", "x"))
    assert list(tables.index_scan(prefix)) == []
