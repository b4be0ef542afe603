"""Our schemas in the session's real registry: registration, evolution, refusal, decoding."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema

from deploystream.registry.java import JavaNotFound, find_java, java_major
from deploystream.registry.provision import ProvidedRegistry
from schemas import AvroDecodeError
from schemas.registry import (
    FramedCodec,
    IncompatibleSchema,
    NotFramed,
    SchemaRegistry,
    TopicSchemas,
    UnknownSchema,
    header,
    key_subject,
    register_schemas,
    schema_of,
    value_subject,
)

EVENT: dict[str, Any] = {
    "eventId": "e-1",
    "recordedAt": datetime(2026, 1, 1, tzinfo=UTC),
    "tenant": "t",
    "key": None,
    "payload": ("deploystream.DeploymentDeleted", {"updateSequenceNumber": 7}),
}


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "fields": [*schema["fields"], field]}


#: BACKWARD compatible: an optional field with a default.
OPTIONAL = {"name": "origin", "type": ["null", "string"], "default": None}
#: Not BACKWARD compatible: a required field; records written before have no value for it.
REQUIRED = {"name": "region", "type": "string"}


@pytest.fixture
def registry(schema_registry: ProvidedRegistry) -> Iterator[SchemaRegistry]:
    with SchemaRegistry(schema_registry.url) as opened:
        yield opened


@pytest.fixture
def subject() -> str:
    return value_subject(f"evolution-{uuid.uuid4().hex[:10]}")


def test_an_optional_field_is_accepted_and_old_and_new_records_both_decode(
    registry: SchemaRegistry, subject: str
) -> None:
    old = FramedCodec("DeploymentEvent", registry)
    old_id = old.register(subject)
    new = FramedCodec(
        "DeploymentEvent", registry, schema=with_field(schema_of("DeploymentEvent"), OPTIONAL)
    )
    new_id = new.register(subject)
    assert new_id != old_id
    written_old = old.encode(EVENT)
    written_new = new.encode({**EVENT, "origin": "gateway-2"})
    assert written_old[:5] == header(old_id)
    assert written_new[:5] == header(new_id)
    # An old reader reads new records (the field is skipped) ...
    assert old.decode(written_old) == EVENT
    assert old.decode(written_new) == EVENT
    # ... and a new reader reads old records (the default fills the field in).
    assert new.decode(written_old) == {**EVENT, "origin": None}
    assert new.decode(written_new) == {**EVENT, "origin": "gateway-2"}
    # A reader that started before the new version fetches its writer schema by id.
    with SchemaRegistry(registry.url) as fresh:
        assert FramedCodec("DeploymentEvent", fresh).decode(written_new) == EVENT


def test_an_incompatible_change_is_refused_with_a_clear_message(
    schema_registry: ProvidedRegistry, registry: SchemaRegistry, subject: str
) -> None:
    FramedCodec("DeploymentEvent", registry).register(subject)
    broken = FramedCodec(
        "DeploymentEvent", registry, schema=with_field(schema_of("DeploymentEvent"), REQUIRED)
    )
    with pytest.raises(IncompatibleSchema) as refused:
        broken.register(subject)
    assert f"refuses deploystream.DeploymentEvent for subject {subject!r}" in str(refused.value)
    assert "not BACKWARD compatible" in str(refused.value)
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        assert client.get_versions(subject) == [1]


def test_registering_again_returns_the_same_id_and_adds_no_version(
    schema_registry: ProvidedRegistry, registry: SchemaRegistry, subject: str
) -> None:
    first = FramedCodec("StoredDeployment", registry).register(subject)
    with SchemaRegistry(registry.url) as other_process:
        assert FramedCodec("StoredDeployment", other_process).register(subject) == first
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        assert client.get_versions(subject) == [1]


def test_backward_is_enforced_on_our_subjects_even_where_it_was_weaker(
    schema_registry: ProvidedRegistry, registry: SchemaRegistry, subject: str
) -> None:
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        client.set_compatibility(subject, "NONE")
        FramedCodec("DeadLetter", registry).register(subject)
        assert client.get_compatibility(subject) == "BACKWARD"
        client.set_compatibility(subject, "FULL_TRANSITIVE")
        FramedCodec("DeadLetter", registry).register(subject)
        assert client.get_compatibility(subject) == "FULL_TRANSITIVE"  # stricter: kept


def test_register_schemas_registers_values_and_keys_and_learns_every_read_version(
    schema_registry: ProvidedRegistry, registry: SchemaRegistry
) -> None:
    topic = f"topic-{uuid.uuid4().hex[:10]}"
    read_topic = f"read-{uuid.uuid4().hex[:10]}"
    ids = [
        FramedCodec("DeploymentEvent", registry).register(value_subject(read_topic)),
        FramedCodec(
            "DeploymentEvent", registry, schema=with_field(schema_of("DeploymentEvent"), OPTIONAL)
        ).register(value_subject(read_topic)),
    ]
    with SchemaRegistry(registry.url) as fresh:
        codecs = register_schemas(
            fresh,
            TopicSchemas(
                writes={topic: "StoredDeployment"},
                reads={read_topic: "DeploymentEvent"},
                keys={topic: "DeploymentKey"},
            ),
        )
        assert sorted(codecs) == sorted([topic, read_topic])
        assert codecs[read_topic].schema_id is None  # read only: it never encodes
        assert all(fresh.cached(schema_id) for schema_id in ids)
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        key = client.get_latest_version(key_subject(topic)).schema.schema_str
        value = client.get_latest_version(value_subject(topic)).schema.schema_str
    assert parse_schema(json.loads(key))["name"] == "deploystream.DeploymentKey"
    # Written out whole: it parses on its own, no other schema needed.
    assert parse_schema(json.loads(value))["name"] == "deploystream.StoredDeployment"
    assert "__fastavro" not in value


def test_bytes_not_framed_or_naming_an_unknown_id_raise_avro_decode_errors(
    registry: SchemaRegistry,
) -> None:
    codec = FramedCodec("DeploymentEvent", registry)
    for data in (b"", b"\x00\x00\x01", b"\x01" + bytes(8)):
        with pytest.raises(NotFramed):
            codec.decode(data)
    with pytest.raises(UnknownSchema, match="unknown to the registry"):
        codec.decode(header(2**31 - 2) + b"\x02x")
    assert issubclass(NotFramed, AvroDecodeError)
    assert issubclass(UnknownSchema, AvroDecodeError)


def test_a_java_of_at_least_21_is_found_for_the_registry() -> None:
    java = find_java(21)
    major = java_major(java)
    assert major is not None
    assert major >= 21
    with pytest.raises(JavaNotFound, match="no Java >= 999 found; tried"):
        find_java(999)
