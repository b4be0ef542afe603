"""The .avsc files are the public contract: each parses, and events round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import SCHEMA_DIR, AvroCodec, AvroDecodeError

NAMES = sorted(
    p.name.removeprefix("deploystream.").removesuffix(".avsc") for p in SCHEMA_DIR.glob("*.avsc")
)


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_file_parses_with_its_references(name: str) -> None:
    codec = AvroCodec(name)
    assert codec.schema["name"] == f"deploystream.{name}"


def _deployment() -> dict:
    return {
        "deploymentSequenceNumber": 2**63 - 1,
        "updateSequenceNumber": -(2**63),
        "displayName": "d",
        "url": "https://x",
        "description": "x",
        "lastUpdated": "2020-01-01T00:00:00.123456789+01:00",
        "state": "successful",
        "pipeline": {"id": "p", "displayName": "p", "url": "https://p"},
        "environment": {"id": "e", "displayName": "e", "type": "production"},
        "associations": [
            {"associationType": "commit", "values": [{"commitHash": "abc", "repositoryId": "r"}]},
            {
                "associationType": "repository",
                "values": [{"commitHash": None, "repositoryId": "r"}],
            },
            {"associationType": "issueIdOrKeys", "values": ["A-1", "10001"]},
        ],
        "commands": [{"command": "initiate_deployment_gating"}],
        "issueKeys": None,
        "label": None,
        "duration": 12,
        "schemaVersion": "1.0",
    }


def test_deployment_submitted_event_round_trips_exactly() -> None:
    codec = AvroCodec("DeploymentEvent")
    event = {
        "eventId": "e1",
        "recordedAt": datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        "tenant": "t",
        "key": {
            "tenant": "t",
            "pipelineId": "p",
            "environmentId": "e",
            "deploymentSequenceNumber": 1,
        },
        "payload": (
            "deploystream.DeploymentSubmitted",
            {
                "deployment": _deployment(),
                "properties": {"a": "1"},
                "providerMetadata": {"product": "x"},
            },
        ),
    }
    assert codec.decode(codec.encode(event)) == event


def test_truncated_or_padded_bytes_are_refused() -> None:
    codec = AvroCodec("DeploymentKey")
    data = codec.encode(
        {"tenant": "t", "pipelineId": "p", "environmentId": "e", "deploymentSequenceNumber": 7}
    )
    with pytest.raises(AvroDecodeError):
        codec.decode(data[:-1])
    with pytest.raises(AvroDecodeError):
        codec.decode(data + b"\x00")


def test_equal_keys_encode_to_equal_bytes_and_different_keys_differ() -> None:
    codec = AvroCodec("DeploymentKey")
    a = {"tenant": "t", "pipelineId": "p|e", "environmentId": "x", "deploymentSequenceNumber": 1}
    b = {"tenant": "t", "pipelineId": "p", "environmentId": "e|x", "deploymentSequenceNumber": 1}
    assert codec.encode(a) == codec.encode(dict(a))
    assert codec.encode(a) != codec.encode(b)
