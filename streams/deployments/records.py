"""The sequence-number rule, as a pure function of (stored state, event).

Stored data is replaced only when its updateSequenceNumber is lower than the incoming one.
An equal number with identical content re-writes the same value: after a crash between the
local RocksDB write and the changelog write, replaying the event puts the value back on the
changelog (stream-anchors pitfall 10). Deletes re-emit their tombstone for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DELETED", "SUBMITTED", "Delete", "Keep", "Outcome", "Put", "apply_event"]

SUBMITTED = "deploystream.DeploymentSubmitted"
DELETED = "deploystream.DeploymentDeleted"

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


def _stored_from(event: dict[str, Any], payload: dict[str, Any]) -> StoredDeployment:
    return {
        "key": event["key"],
        "deployment": payload["deployment"],
        "properties": payload.get("properties") or {},
        "providerMetadata": payload.get("providerMetadata"),
        "eventId": event["eventId"],
    }


def _same_content(a: StoredDeployment, b: StoredDeployment) -> bool:
    return (
        a["deployment"] == b["deployment"]
        and a["properties"] == b["properties"]
        and a["providerMetadata"] == b["providerMetadata"]
    )


def apply_event(stored: StoredDeployment | None, event: dict[str, Any]) -> Outcome:
    """What a decoded ``DeploymentEvent`` does to the stored state of its key."""
    kind, payload = event["payload"]
    if kind == SUBMITTED:
        incoming = _stored_from(event, payload)
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
    return Keep(f"unknown event type {kind}")
