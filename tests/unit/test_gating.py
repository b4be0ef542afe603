"""Deployment gating as a function of submissions and decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.deployments.gating import GatingPolicy
from streams.deployments.records import (
    GATING_DECIDED,
    SUBMITTED,
    Keep,
    Put,
    apply_event,
    matches_properties,
)

POLICY = GatingPolicy(frozenset({"production"}), "https://jira.example.com/")
KEY = {"tenant": "t", "pipelineId": "p", "environmentId": "e", "deploymentSequenceNumber": 1}
AT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def submitted(
    usn: int, env_type: str = "production", gated: bool = True, state: str = "pending"
) -> dict[str, Any]:
    deployment = {
        "updateSequenceNumber": usn,
        "state": state,
        "environment": {"id": "e", "displayName": "E", "type": env_type},
        "issueKeys": ["OPS-1"],
        "associations": [
            {"associationType": "issueIdOrKeys", "values": ["10001", "OPS-2", "OPS-1"]}
        ],
        "commands": [{"command": "initiate_deployment_gating"}] if gated else None,
    }
    payload = {"deployment": deployment, "properties": {"team": "a"}, "providerMetadata": None}
    return {"eventId": f"s{usn}", "recordedAt": AT, "key": KEY, "payload": (SUBMITTED, payload)}


def decided(decision: str, approver: str = "boss") -> dict[str, Any]:
    payload = {"decision": decision, "approver": approver, "reason": "looks fine"}
    return {"eventId": "d", "recordedAt": AT, "key": KEY, "payload": (GATING_DECIDED, payload)}


def run(*events: dict[str, Any]) -> dict[str, Any] | None:
    stored = None
    for event in events:
        outcome = apply_event(stored, event, POLICY)
        if isinstance(outcome, Put):
            stored = outcome.value
    return stored


def test_gated_production_deployment_awaits_with_issue_details() -> None:
    stored = run(submitted(1))
    assert stored is not None
    assert stored["gating"] == {
        "status": "awaiting",
        "updatedTimestamp": "2026-03-04T05:06:07.890Z",
        "details": [
            {
                "type": "issue",
                "issueKey": "OPS-1",
                "issueLink": "https://jira.example.com/browse/OPS-1",
            },
            {
                "type": "issue",
                "issueKey": "OPS-2",
                "issueLink": "https://jira.example.com/browse/OPS-2",
            },
        ],
        "decidedBy": None,
        "reason": None,
    }


def test_environment_without_approval_is_allowed_at_once() -> None:
    stored = run(submitted(1, env_type="staging"))
    assert stored is not None and stored["gating"]["status"] == "allowed"


def test_deployment_that_never_asked_has_no_gating() -> None:
    stored = run(submitted(1, gated=False))
    assert stored is not None and stored["gating"] is None


@pytest.mark.parametrize("decision", ["allowed", "prevented"])
def test_decision_settles_an_awaiting_gate(decision: str) -> None:
    stored = run(submitted(1), decided(decision))
    assert stored is not None
    assert stored["gating"]["status"] == decision
    assert stored["gating"]["decidedBy"] == "boss"


def test_first_decision_wins() -> None:
    stored = run(submitted(1), decided("prevented"), decided("allowed", approver="other"))
    assert stored is not None and stored["gating"]["status"] == "prevented"


def test_later_update_keeps_a_decision_already_taken_even_when_it_repeats_the_command() -> None:
    stored = run(submitted(1), decided("allowed"), submitted(2, state="successful"))
    assert stored is not None
    assert stored["deployment"]["state"] == "successful"
    assert stored["gating"]["status"] == "allowed"


def test_later_update_without_the_command_keeps_gating_awaiting() -> None:
    stored = run(submitted(1), submitted(2, gated=False))
    assert stored is not None and stored["gating"]["status"] == "awaiting"


def test_decision_for_ungated_or_unknown_deployment_changes_nothing() -> None:
    assert isinstance(apply_event(None, decided("allowed"), POLICY), Keep)
    assert isinstance(apply_event(run(submitted(1, gated=False)), decided("allowed"), POLICY), Keep)


def test_replayed_decision_rewrites_the_same_state() -> None:
    stored = run(submitted(1), decided("allowed"))
    outcome = apply_event(stored, decided("allowed"), POLICY)
    assert isinstance(outcome, Put) and outcome.value is stored


@pytest.mark.parametrize(
    ("properties", "usn", "expected"),
    [
        ({"team": "a"}, None, True),
        ({"team": "b"}, None, False),
        ({"team": "a", "other": "x"}, None, False),
        ({"team": "a"}, 1, True),
        ({"team": "a"}, 0, False),
    ],
)
def test_delete_by_properties_matches_all_properties_and_the_limit(
    properties: dict[str, str], usn: int | None, expected: bool
) -> None:
    stored = run(submitted(1))
    assert stored is not None
    assert matches_properties(stored, properties, usn) is expected
