"""The Confluent wire format and what is registered, without a registry; the registry
application is only ever used when its archive has the pinned SHA-256."""

from __future__ import annotations

import json
import stat
import tarfile
from pathlib import Path

import pytest
from fastavro import parse_schema

from deploystream.registry.apicurio import RegistryError, ensure_app
from gateway.events import deployment_key
from schemas import AvroCodec, AvroDecodeError
from schemas.registry import (
    HEADER,
    FramedCodec,
    NotFramed,
    NotRegistered,
    SchemaRegistry,
    header,
    schema_id_of,
    schema_of,
)

NOWHERE = "http://127.0.0.1:9/apis/ccompat/v7"  # never asked by these tests


@pytest.mark.parametrize("schema_id", [0, 1, 7, 2**16 + 3, 2**31 - 1])
def test_header_is_magic_zero_and_the_id_in_four_big_endian_bytes(schema_id: int) -> None:
    framed = header(schema_id)
    assert len(framed) == HEADER == 5
    assert framed[0] == 0
    assert framed[1:] == schema_id.to_bytes(4, "big")
    assert schema_id_of(framed + b"body") == schema_id


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x01", b"\x01\x00\x00\x00\x01x"])
def test_bytes_without_magic_zero_and_a_whole_id_are_not_framed(data: bytes) -> None:
    with pytest.raises(NotFramed, match="Confluent wire format"):
        schema_id_of(data, "DeadLetter")
    assert issubclass(NotFramed, AvroDecodeError)  # dead-lettered like any poison record


def test_a_schemaless_record_is_not_mistaken_for_a_framed_one() -> None:
    key = deployment_key("tenant", "pipe", "env", 1)
    with pytest.raises(NotFramed):
        FramedCodec("DeploymentKey", SchemaRegistry(NOWHERE)).decode(key)


def test_encoding_before_registration_is_refused() -> None:
    codec = FramedCodec("DeadLetter", SchemaRegistry(NOWHERE))
    with pytest.raises(NotRegistered, match="DeadLetter: schema not registered"):
        codec.encode({})


def test_registered_schemas_are_whole_and_plain_avro() -> None:
    for record in ("DeploymentEvent", "StoredDeployment", "DeadLetter", "DeploymentIndexEntry"):
        schema = schema_of(record)
        text = json.dumps(schema)
        assert "__fastavro" not in text
        assert schema["name"] == f"deploystream.{record}"
        # Parses on its own: every named type it uses is written out in it.
        assert parse_schema(json.loads(text), named_schemas={})["name"] == schema["name"]


def test_keys_stay_schemaless_avro_whatever_the_registry() -> None:
    fields = {"tenant": "t", "pipelineId": "p", "environmentId": "e", "deploymentSequenceNumber": 5}
    key = deployment_key("t", "p", "e", 5)
    assert key == AvroCodec("DeploymentKey").encode(fields)
    assert key[0] != 0  # no framing: the first byte is the tenant's length


def test_an_archive_whose_sha256_differs_from_the_pin_is_refused(tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "quarkus-run.jar").write_text("not the real application")
    archive = tmp_path / "apicurio-registry-app-3.3.3-all.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload / "quarkus-run.jar", "quarkus-run.jar")
    mvn = tmp_path / "mvn"
    # Stands in for Maven: "downloads" the tampered archive where it is asked to.
    mvn.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) d="${a#-DoutputDirectory=}";; '
        "esac; done\n"
        f'mkdir -p "$d" && cp {archive} "$d"/\n'
    )
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    cache = tmp_path / "cache"
    with pytest.raises(RegistryError, match="SHA-256"):
        ensure_app(cache, mvn=str(mvn))
    assert not (cache / "3.3.3").exists()
    assert list(cache.iterdir()) == []  # nothing half-unpacked is left behind
