"""Avro schemas of deploystream's topics: the public contract, kept as ``.avsc`` files.

:class:`AvroCodec` reads and writes schemaless Avro binary: what keys are, and what values
are inside the Confluent wire format (:mod:`schemas.registry` frames them and registers the
schemas). A union of records is written and read as ``(full record name, record)``.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import load_schema

from schemas.tagging import union_tagger

__all__ = ["SCHEMA_DIR", "AvroCodec", "AvroDecodeError", "load"]

SCHEMA_DIR = Path(str(resources.files(__name__)))


class AvroDecodeError(ValueError):
    """Bytes that are not a valid record of the expected schema."""


def load(name: str) -> Any:
    """Parse ``schemas/deploystream.<name>.avsc`` with every named type it references."""
    return load_schema(str(SCHEMA_DIR / f"deploystream.{name}.avsc"))


class AvroCodec:
    """Encodes and decodes one record type as schemaless Avro binary."""

    def __init__(self, name: str) -> None:
        self.name = name
        named: dict[str, Any] = {}
        self.schema = parse_schema(load(name), named_schemas=named)
        self._tag = union_tagger(self.schema, named)

    def encode(self, record: dict[str, Any]) -> bytes:
        """Serialise ``record``; raises ``ValueError``-family errors on a shape mismatch."""
        buffer = io.BytesIO()
        if self._tag is not None:
            record = self._tag(record)
        schemaless_writer(buffer, self.schema, record, strict_allow_default=True)
        return buffer.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Deserialise ``data``; trailing garbage or truncation raises AvroDecodeError."""
        buffer = io.BytesIO(data)
        try:
            record = schemaless_reader(
                buffer,
                self.schema,
                None,
                return_record_name=True,
                return_record_name_override=True,
            )
        except Exception as exc:
            msg = f"not a valid {self.name} record: {exc!r}"
            raise AvroDecodeError(msg) from exc
        if buffer.tell() != len(data) or not isinstance(record, dict):
            msg = f"not a valid {self.name} record: {len(data) - buffer.tell()} trailing bytes"
            raise AvroDecodeError(msg)
        return record
