"""The applier keeps the property index in step with the table, and delete-by-properties
removes exactly the matching deployments of the tenant (dicts stand in for the tables)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import deployment_key
from streams.deployments.agents import DeploymentApplier
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import bucket_of
from streams.deployments.records import DELETED, DELETED_BY_PROPERTIES, SUBMITTED
from streams.metrics import WorkerMetrics

POLICY = GatingPolicy(frozenset({"production"}), "https://jira.example.com")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def key_of(tenant: str, number: int) -> tuple[bytes, dict[str, Any]]:
    fields = {
        "tenant": tenant,
        "pipelineId": "p",
        "environmentId": "e",
        "deploymentSequenceNumber": number,
    }
    return deployment_key(tenant, "p", "e", number), fields


def submitted(
    tenant: str, number: int, usn: int, properties: dict[str, str]
) -> tuple[bytes, dict[str, Any]]:
    key, fields = key_of(tenant, number)
    deployment = {"updateSequenceNumber": usn, "commands": None, "environment": {"type": "testing"}}
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
    payload = {"updateSequenceNumber": None}
    return key, {
        "eventId": "d",
        "recordedAt": AT,
        "tenant": tenant,
        "key": fields,
        "payload": (DELETED, payload),
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
    return DeploymentApplier({}, {}, POLICY, WorkerMetrics())


def stored_numbers(app: DeploymentApplier, tenant: str) -> set[int]:
    return {
        v["key"]["deploymentSequenceNumber"]
        for v in app.table.values()
        if v["key"]["tenant"] == tenant
    }


def test_delete_by_properties_removes_only_matching_deployments_of_the_tenant() -> None:
    app = applier()
    for number in range(10):
        app.apply(*submitted("a", number, 1, {"team": "x" if number < 5 else "y", "env": "prod"}))
    app.apply(*submitted("b", 0, 1, {"team": "x", "env": "prod"}))
    assert (
        app.apply(None, by_properties("a", {"team": "x", "env": "prod"})) == "delete_by_properties"
    )
    assert stored_numbers(app, "a") == {5, 6, 7, 8, 9}
    assert stored_numbers(app, "b") == {0}


def test_index_entries_disappear_with_their_last_deployment() -> None:
    app = applier()
    app.apply(*submitted("a", 1, 1, {"team": "x"}))
    assert app.index
    app.apply(*deleted("a", 1))
    assert app.index == {}


def test_changed_properties_move_the_deployment_in_the_index() -> None:
    app = applier()
    app.apply(*submitted("a", 1, 1, {"team": "x"}))
    app.apply(*submitted("a", 1, 2, {"team": "y"}))
    app.apply(None, by_properties("a", {"team": "x"}))
    assert stored_numbers(app, "a") == {1}
    app.apply(None, by_properties("a", {"team": "y"}))
    assert stored_numbers(app, "a") == set()
    assert app.index == {}


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
    app = applier()
    for kind, number, usn, team in ops:
        if kind == "submit":
            app.apply(*submitted("a", number, usn, {"team": team}))
        elif kind == "delete":
            app.apply(*deleted("a", number))
        else:
            app.apply(None, by_properties("a", {"team": team}))
    listed = {key for entry in app.index.values() for key in entry["keys"]}
    assert listed == set(app.table)
    for key, value in app.table.items():
        entry_key = app._entry_key("a", "team", value["properties"]["team"], bucket_of(key))
        assert key in app.index[entry_key]["keys"]


class RecordingTable(dict[bytes, Any]):
    """A table that remembers every delete it was asked for (each sends a tombstone)."""

    def __init__(self) -> None:
        super().__init__()
        self.deletes: list[bytes] = []

    def __delitem__(self, key: bytes) -> None:
        self.deletes.append(key)
        super().__delitem__(key)


def test_lost_index_writes_are_re_derived_from_the_stored_deployment() -> None:
    app = applier()
    key, event = submitted("a", 1, 1, {"team": "x"})
    app.apply(key, event)
    app.index.clear()  # the index changelog lost this write; the table's survived
    app.ensure_indexed(key)
    app.apply(None, by_properties("a", {"team": "x"}))
    assert stored_numbers(app, "a") == set()


def test_delete_by_properties_sends_again_the_tombstone_of_a_listed_absent_key() -> None:
    table = RecordingTable()
    app = DeploymentApplier(table, {}, POLICY, WorkerMetrics())
    key, event = submitted("a", 1, 1, {"team": "x"})
    app.apply(key, event)
    dict.__delitem__(table, key)  # deleted locally; its tombstone never reached Kafka
    app.apply(None, by_properties("a", {"team": "x"}))
    assert table.deletes == [key]
