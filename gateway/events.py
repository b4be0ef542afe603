"""Commands in, events out: the Avro records the gateway writes to the deployments topic."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway.contract import DeploymentData, ProviderMetadata
from schemas import AvroCodec
from schemas.registry import RecordCodec

__all__ = [
    "EventCodecs",
    "OutgoingEvent",
    "Tombstone",
    "deployment_deleted",
    "deployment_key",
    "deployment_submitted",
    "deployments_deleted_by_properties",
    "gating_decision_recorded",
]

SUBMITTED = "deploystream.DeploymentSubmitted"
DELETED = "deploystream.DeploymentDeleted"
DELETED_BY_PROPERTIES = "deploystream.DeploymentsDeletedByProperties"
GATING_DECIDED = "deploystream.GatingDecisionRecorded"


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One Kafka record: Avro-encoded key and value; ``partition`` only for commands that are
    written to every partition (no key)."""

    key: bytes | None
    value: bytes
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A record with a key and no value: on a compacted topic, the key is deleted."""

    key: bytes
    value: None = None
    partition: None = None


@functools.cache
def _key_codec() -> AvroCodec:
    return AvroCodec("DeploymentKey")


def deployment_key(tenant: str, pipeline_id: str, environment_id: str, number: int) -> bytes:
    """Key bytes of one deployment: the partitioning and table key everywhere. Schemaless
    Avro, never framed: the same key is the same bytes whatever the registry."""
    return _key_codec().encode(_key(tenant, pipeline_id, environment_id, number))


class EventCodecs:
    """The Avro codecs the gateway needs, built once per app: ``event`` encodes the values
    (a registered :class:`schemas.registry.FramedCodec` in the gateway)."""

    def __init__(self, event: RecordCodec) -> None:
        self.key = _key_codec()
        self.event = event

    def encode_key(self, tenant: str, pipeline_id: str, environment_id: str, number: int) -> bytes:
        """Key bytes of one deployment (:func:`deployment_key`)."""
        return deployment_key(tenant, pipeline_id, environment_id, number)


def _key(tenant: str, pipeline_id: str, environment_id: str, number: int) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "pipelineId": pipeline_id,
        "environmentId": environment_id,
        "deploymentSequenceNumber": number,
    }


def _envelope(
    tenant: str, key: dict[str, Any] | None, payload: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "eventId": str(uuid.uuid4()),
        "recordedAt": datetime.now(UTC),
        "tenant": tenant,
        "key": key,
        "payload": payload,
    }


def deployment_submitted(
    codecs: EventCodecs,
    tenant: str,
    deployment: DeploymentData,
    properties: dict[str, str],
    provider: ProviderMetadata | None,
) -> OutgoingEvent:
    """``DeploymentSubmitted`` for one validated deployment."""
    record = msgspec.to_builtins(deployment)
    record["schemaVersion"] = deployment.schemaVersion or "1.0"
    key = _key(
        tenant,
        deployment.pipeline.id,
        deployment.environment.id,
        deployment.deploymentSequenceNumber,
    )
    payload = {
        "deployment": record,
        "properties": properties,
        "providerMetadata": msgspec.to_builtins(provider) if provider else None,
    }
    return OutgoingEvent(
        codecs.key.encode(key), codecs.event.encode(_envelope(tenant, key, (SUBMITTED, payload)))
    )


def deployment_deleted(
    codecs: EventCodecs,
    tenant: str,
    pipeline_id: str,
    environment_id: str,
    number: int,
    update_sequence_number: int | None,
) -> OutgoingEvent:
    """``DeploymentDeleted`` for one key."""
    key = _key(tenant, pipeline_id, environment_id, number)
    payload = {"updateSequenceNumber": update_sequence_number}
    return OutgoingEvent(
        codecs.key.encode(key), codecs.event.encode(_envelope(tenant, key, (DELETED, payload)))
    )


def deployments_deleted_by_properties(
    codecs: EventCodecs,
    tenant: str,
    properties: dict[str, str],
    update_sequence_number: int | None,
    partitions: int,
) -> list[OutgoingEvent]:
    """One ``DeploymentsDeletedByProperties`` per partition, so every worker sees it in order
    with the submissions before it on its partitions."""
    events = []
    for partition in range(partitions):
        payload = {
            "properties": properties,
            "updateSequenceNumber": update_sequence_number,
            "partition": partition,
            "partitions": partitions,
        }
        value = codecs.event.encode(_envelope(tenant, None, (DELETED_BY_PROPERTIES, payload)))
        events.append(OutgoingEvent(None, value, partition))
    return events


def gating_decision_recorded(
    codecs: EventCodecs,
    tenant: str,
    pipeline_id: str,
    environment_id: str,
    number: int,
    decision: str,
    approver: str,
    reason: str | None,
) -> OutgoingEvent:
    """``GatingDecisionRecorded`` for one deployment."""
    key = _key(tenant, pipeline_id, environment_id, number)
    payload = {"decision": decision, "approver": approver, "reason": reason}
    return OutgoingEvent(
        codecs.key.encode(key),
        codecs.event.encode(_envelope(tenant, key, (GATING_DECIDED, payload))),
    )
