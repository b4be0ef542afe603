"""Naming union branches up front changes how fast records are written, never the bytes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from deploystream.load import DeploymentGenerator, GeneratorConfig
from gateway.events import EventCodecs, deployment_submitted
from gateway.validation import parse_submission
from schemas import AvroCodec, load
from schemas.tagging import union_tagger


def _plain_bytes(name: str, record: dict[str, Any]) -> bytes:
    """What fastavro writes when left to pick every union branch itself."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(load(name)), record)
    return buffer.getvalue()


@pytest.mark.parametrize("seed", range(5))
def test_submitted_events_encode_to_the_bytes_fastavro_chooses_alone(seed: int) -> None:
    generator = DeploymentGenerator(GeneratorConfig(seed=seed))
    codecs = EventCodecs(AvroCodec("DeploymentEvent"))
    command = parse_submission(generator.encoded_body(60), max_deployments=100)
    assert command.deployments
    for deployment in command.deployments:
        event = deployment_submitted(
            codecs, "tenant", deployment, command.properties, command.provider_metadata
        )
        record = codecs.event.decode(event.value)
        assert event.value == _plain_bytes("DeploymentEvent", record)
        payload = record["payload"][1]
        stored = {
            "key": record["key"],
            "deployment": payload["deployment"],
            "properties": payload["properties"],
            "providerMetadata": payload["providerMetadata"],
            "eventId": record["eventId"],
            "gating": None,
        }
        assert AvroCodec("StoredDeployment").encode(stored) == _plain_bytes(
            "StoredDeployment", stored
        )


def test_tagging_does_not_change_the_callers_record() -> None:
    codecs = EventCodecs(AvroCodec("DeploymentEvent"))
    command = parse_submission(
        DeploymentGenerator(GeneratorConfig(seed=9)).encoded_body(1), max_deployments=1
    )
    (deployment,) = command.deployments
    event = deployment_submitted(codecs, "t", deployment, {}, None)
    record = codecs.event.decode(event.value)
    before = repr(record)
    assert codecs.event.encode(record) == event.value
    assert repr(record) == before


def test_unions_of_primitives_are_left_to_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "P",
        "fields": [{"name": "a", "type": ["null", "string", "long"]}],
    }
    assert union_tagger(parse_schema(schema), {}) is None


def test_branches_one_python_type_cannot_tell_apart_stay_plain() -> None:
    named: dict[str, Any] = {}
    schema = parse_schema(
        {
            "type": "record",
            "name": "Outer",
            "fields": [
                {
                    "name": "either",
                    "type": [
                        "null",
                        {"type": "record", "name": "A", "fields": [{"name": "x", "type": "long"}]},
                        {"type": "record", "name": "B", "fields": [{"name": "y", "type": "long"}]},
                    ],
                },
                {"name": "flag", "type": ["boolean", "long", {"type": "array", "items": "long"}]},
            ],
        },
        named_schemas=named,
    )
    tag = union_tagger(schema, named)
    assert tag is not None
    tagged = tag({"either": {"y": 1}, "flag": True})
    # Two records: fastavro still decides by fields; a bool is never named "long".
    assert tagged == {"either": {"y": 1}, "flag": ("boolean", True)}
    assert tag({"either": ("B", {"y": 1}), "flag": 3})["flag"] == ("long", 3)
    assert tag({"either": None, "flag": [1, 2]})["flag"] == ("array", [1, 2])
