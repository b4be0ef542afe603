"""The sequence-number rule, as a pure function of (stored state, event).

Stored data is replaced only when its updateSequenceNumber is lower than the incoming one.
An equal number with identical content re-writes the same value: after a crash between the
local RocksDB write and the changelog write, replaying the event puts the value back on the
changelog (stream-anchors pitfall 10). Deletes re-emit their tombstone for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.deployments.gating import GatingPolicy, decide, gating_after_update

__all__ = [
    "DELETED",
    "DELETED_BY_PROPERTIES",
    "GATING_DECIDED",
    "SUBMITTED",
    "Delete",
    "Keep",
    "Outcome",
    "Put",
    "apply_event",
    "matches_properties",
]

SUBMITTED = "deploystream.DeploymentSubmitted"
DELETED = "deploystream.DeploymentDeleted"
DELETED_BY_PROPERTIES = "deploystream.DeploymentsDeletedByProperties"
GATING_DECIDED = "deploystream.GatingDecisionRecorded"

StoredDeployment = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``value`` (new or identical) to the table."""

    value: StoredDeployment


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the key (a tombstone on the changelog)."""


@dataclass(frozen=True, slots=True)
class Keep:
    """Change nothing: the event is older than what is stored."""

    reason: str


Outcome = Put | Delete | Keep


def _stored_from(
    event: dict[str, Any],
    payload: dict[str, Any],
    previous: StoredDeployment | None,
    policy: GatingPolicy,
) -> StoredDeployment:
    deployment = payload["deployment"]
    gating = gating_after_update(
        previous.get("gating") if previous else None, deployment, policy, event["recordedAt"]
    )
    return {
        "key": event["key"],
        "deployment": deployment,
        "properties": payload.get("properties") or {},
        "providerMetadata": payload.get("providerMetadata"),
        "eventId": event["eventId"],
        "gating": gating,
    }


def _same_content(a: StoredDeployment, b: StoredDeployment) -> bool:
    return (
        a["deployment"] == b["deployment"]
        and a["properties"] == b["properties"]
        and a["providerMetadata"] == b["providerMetadata"]
    )


def apply_event(
    stored: StoredDeployment | None, event: dict[str, Any], policy: GatingPolicy
) -> Outcome:
    """What a decoded ``DeploymentEvent`` about one deployment does to its stored state."""
    kind, payload = event["payload"]
    if kind == SUBMITTED:
        incoming = _stored_from(event, payload, stored, policy)
        if stored is None:
            return Put(incoming)
        have = stored["deployment"]["updateSequenceNumber"]
        want = incoming["deployment"]["updateSequenceNumber"]
        if have < want:
            return Put(incoming)
        if have == want and _same_content(stored, incoming):
            return Put(stored)
        return Keep(f"stored updateSequenceNumber {have} >= incoming {want}")
    if kind == DELETED:
        limit = payload.get("updateSequenceNumber")
        if stored is None or limit is None:
            return Delete()
        have = stored["deployment"]["updateSequenceNumber"]
        if have <= limit:
            return Delete()
        return Keep(f"stored updateSequenceNumber {have} > delete limit {limit}")
    if kind == GATING_DECIDED:
        return _gating_decided(stored, event, payload)
    return Keep(f"unknown event type {kind}")


def _gating_decided(
    stored: StoredDeployment | None, event: dict[str, Any], payload: dict[str, Any]
) -> Outcome:
    if stored is None or stored.get("gating") is None:
        return Keep("no gated deployment to decide")
    gating = stored["gating"]
    decided = decide(
        gating, payload["decision"], payload["approver"], payload["reason"], event["recordedAt"]
    )
    if decided is not None:
        return Put({**stored, "gating": decided})
    if gating["status"] == payload["decision"] and gating["decidedBy"] == payload["approver"]:
        return Put(stored)  # a replayed decision: re-write, as for submissions
    return Keep(f"gating already {gating['status']}")


def matches_properties(
    stored: StoredDeployment, properties: dict[str, str], update_sequence_number: int | None
) -> bool:
    """Whether a delete-by-properties command removes ``stored`` (AND of all properties)."""
    have = stored["properties"]
    if any(have.get(name) != value for name, value in properties.items()):
        return False
    usn = stored["deployment"]["updateSequenceNumber"]
    return update_sequence_number is None or usn <= update_sequence_number
