"""Our schemas in a schema registry, our records in the Confluent wire format.

Every record *value* we write is framed: magic byte 0, the writer schema's registry id as 4
big-endian bytes, then the Avro body. Any Kafka consumer with a schema-registry deserializer
(confluent-kafka's ``AvroDeserializer``, Kafka Connect, ksqlDB, ...) decodes it with nothing
of ours. Schemas are registered once per process, at start, under the topic-name strategy
(``<topic>-value``) with BACKWARD compatibility enforced on the subject; encoding and
decoding then never call the registry, except to fetch (once) a writer schema that was
registered after we started.

*Keys* stay schemaless Avro: a key's bytes are its partition (murmur2) and its table key,
so they must never change for the same key, and a registry id inside them would change
with every key-schema version (and differ between registries). Their schema is registered
under ``<topic>-key`` for discovery only; the bytes carry no id.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from schemas import AvroDecodeError, load
from schemas.tagging import union_tagger

__all__ = [
    "HEADER",
    "MAGIC",
    "FramedCodec",
    "IncompatibleSchema",
    "NotFramed",
    "NotRegistered",
    "RecordCodec",
    "RegistryError",
    "RegistryUnavailable",
    "SchemaRegistry",
    "TopicSchemas",
    "UnknownSchema",
    "header",
    "key_subject",
    "register_schemas",
    "schema_id_of",
    "schema_of",
    "value_subject",
]

logger = logging.getLogger(__name__)

#: The wire format: magic byte 0, a 4-byte big-endian schema id, the Avro body.
MAGIC = 0
HEADER = 5
#: Subject levels at least as strict as BACKWARD: left as the operator set them.
_BACKWARD_OR_STRICTER = frozenset({"BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"})


class RecordCodec(Protocol):
    """What the services need of a codec: one record type to and from bytes."""

    def encode(self, record: dict[str, Any]) -> bytes: ...

    def decode(self, data: bytes) -> dict[str, Any]: ...


class RegistryError(Exception):
    """Root of the registry errors that are not about one record's bytes."""


class RegistryUnavailable(RegistryError):
    """The registry did not answer (or answered with a server error): try again later."""


class IncompatibleSchema(RegistryError):
    """The registry refused one of our schemas: it would break the subject's compatibility."""


class NotRegistered(RegistryError):
    """A codec was asked to encode before its schema was registered."""


class NotFramed(AvroDecodeError):
    """Bytes that are not in the Confluent wire format."""


class UnknownSchema(AvroDecodeError):
    """Bytes naming a schema id the registry does not know."""


def header(schema_id: int) -> bytes:
    """The 5 bytes that precede the Avro body of a record written with ``schema_id``."""
    return bytes([MAGIC]) + schema_id.to_bytes(4, "big")


def schema_id_of(data: bytes, record: str = "record") -> int:
    """The writer schema id of framed ``data``; NotFramed when it is not framed."""
    if len(data) < HEADER or data[0] != MAGIC:
        msg = f"not a {record} in the Confluent wire format (magic byte 0 + schema id)"
        raise NotFramed(msg)
    return int.from_bytes(data[1:HEADER], "big")


def value_subject(topic: str) -> str:
    """The subject of a topic's values (topic-name strategy)."""
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    """The subject of a topic's keys (topic-name strategy; the keys themselves carry no id)."""
    return f"{topic}-key"


def _plain(schema: Any) -> Any:
    # fastavro's loader adds bookkeeping entries ("__fastavro_parsed", ...); not Avro.
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def schema_of(record: str) -> dict[str, Any]:
    """``schemas/deploystream.<record>.avsc`` with every named type it uses written out in
    place (no references): what we register, readable on its own by any consumer."""
    return dict(_plain(load(record)))


def _text(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"))


class SchemaRegistry:
    """A Confluent-compatible registry (Confluent, Apicurio's ccompat API, Karapace).

    Writer schemas are fetched by id once and kept for the life of the process, so a registry
    that goes away later stops nothing that already runs.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        # A timeout always: without one, a request the server never answers blocks forever
        # (reference/schema-registry.md, pitfall 1). Retries are ours, not the client's.
        self._client = SchemaRegistryClient(
            {"url": url, "timeout": timeout, "max.retries": 1, "retries.wait.ms": 200}
        )
        self._writers: dict[int, Any] = {}

    def close(self) -> None:
        """Close the client's connections (a process-long registry never needs to)."""
        self._client.close()

    def __enter__(self) -> SchemaRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unavailable(self, exc: Exception) -> RegistryUnavailable:
        return RegistryUnavailable(f"schema registry at {self.url} unavailable: {exc}")

    def _call(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except SchemaRegistryError as exc:
            if exc.http_status_code >= 500 or exc.http_status_code < 0:
                raise self._unavailable(exc) from exc
            raise
        except Exception as exc:  # transport errors of the client's HTTP library
            raise self._unavailable(exc) from exc

    def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """Register ``schema`` under ``subject`` (once BACKWARD is enforced there) and return
        its id; registering the same schema again returns the same id and adds no version.

        Raises IncompatibleSchema when the registry refuses it, RegistryUnavailable when it
        does not answer.
        """
        self._enforce_backward(subject)
        try:
            schema_id = self._register(subject, _text(schema))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 409:
                msg = (
                    f"the schema registry at {self.url} refuses {schema.get('name')} for subject "
                    f"{subject!r}: it is not BACKWARD compatible with the versions registered "
                    f"there ({exc.error_message}). Make the change compatible (add fields with "
                    "defaults, remove only fields that have defaults) or write a new topic."
                )
                raise IncompatibleSchema(msg) from exc
            msg = f"registering {subject!r} at {self.url} failed: {exc}"
            raise RegistryError(msg) from exc
        self._writers.setdefault(schema_id, parse_schema(dict(schema)))
        return schema_id

    def _level(self, subject: str) -> str | None:
        """The subject's own compatibility level; None when it has none."""
        try:
            return str(self._call(self._client.get_compatibility, subject))
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:  # 404: no level of the subject's own
                msg = f"reading {subject!r}'s compatibility failed: {exc}"
                raise RegistryError(msg) from exc
            return None

    def _register(self, subject: str, text: str) -> int:
        try:
            return int(self._call(self._client.register_schema, subject, Schema(text, "AVRO")))
        except SchemaRegistryError as exc:
            if exc.http_status_code != 409:
                raise
        # A 409 can also be another process creating the subject at the same moment
        # (Apicurio): once more, and then a refusal is a refusal.
        time.sleep(0.5)
        return int(self._call(self._client.register_schema, subject, Schema(text, "AVRO")))

    def _enforce_backward(self, subject: str) -> None:
        level = self._level(subject)
        if level not in _BACKWARD_OR_STRICTER:
            try:
                self._call(self._client.set_compatibility, subject, "BACKWARD")
            except SchemaRegistryError as exc:
                # Two processes starting together: Apicurio refuses the second creation
                # of the subject's rule (409). Fine if the level is now what we want.
                if exc.http_status_code == 409 and self._level(subject) in _BACKWARD_OR_STRICTER:
                    return
                msg = f"setting {subject!r} to BACKWARD compatibility failed: {exc}"
                raise RegistryError(msg) from exc

    def writer(self, schema_id: int) -> Any:
        """The parsed schema with id ``schema_id``, fetched once. Raises UnknownSchema for an
        id the registry does not know, RegistryUnavailable when it does not answer."""
        writer = self._writers.get(schema_id)
        if writer is not None:
            return writer
        try:
            schema = self._call(self._client.get_schema, schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:
                # Refused (401, 403, ...): the record is not at fault, the access is.
                raise self._unavailable(exc) from exc
            msg = f"schema id {schema_id} is unknown to the registry at {self.url}: {exc}"
            raise UnknownSchema(msg) from exc
        if schema.schema_type not in (None, "AVRO"):
            msg = f"schema id {schema_id} is a {schema.schema_type} schema, not Avro"
            raise UnknownSchema(msg)
        writer = self._writers[schema_id] = parse_schema(json.loads(schema.schema_str))
        return writer

    def cached(self, schema_id: int) -> bool:
        """The writer schema ``schema_id`` is known without asking the registry."""
        return schema_id in self._writers

    def learn(self, subject: str) -> list[int]:
        """Fetch (once) the writer schema of every version of ``subject``, so that records
        written with any of them decode even while the registry is down; their ids."""
        try:
            versions = self._call(self._client.get_versions, subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return []
            msg = f"listing {subject!r} failed: {exc}"
            raise RegistryError(msg) from exc
        ids = []
        for version in versions:
            registered = self._call(self._client.get_version, subject, version)
            ids.append(int(registered.schema_id))
            self.writer(int(registered.schema_id))
        return ids

    def latest(self, subject: str) -> tuple[int, Any]:
        """Id and parsed schema of the latest version of ``subject``."""
        try:
            registered = self._call(self._client.get_latest_version, subject)
        except SchemaRegistryError as exc:
            msg = f"subject {subject!r} is unknown to the registry at {self.url}: {exc}"
            raise UnknownSchema(msg) from exc
        return int(registered.schema_id), self.writer(int(registered.schema_id))


class FramedCodec:
    """One record type in the Confluent wire format.

    ``schema`` replaces ``schemas/deploystream.<record>.avsc`` (another version of it).
    Encoding needs :meth:`register` first; decoding reads any writer schema of the registry
    and resolves it against this codec's schema, so records of older (or newer, compatible)
    versions decode too.
    """

    def __init__(
        self, record: str, registry: SchemaRegistry, *, schema: Mapping[str, Any] | None = None
    ) -> None:
        self.record = record
        self.registry = registry
        self.declared: dict[str, Any] = dict(schema) if schema is not None else schema_of(record)
        named: dict[str, Any] = {}
        self.schema = parse_schema(self.declared, named_schemas=named)
        self._tag = union_tagger(self.schema, named)
        self._canonical = to_parsing_canonical_form(self.schema)
        self.schema_id: int | None = None
        self._prefix = b""
        # Per writer id: the (writer, reader) pair to read with; reader None when the writer
        # is this very schema (no resolution needed).
        self._plans: dict[int, tuple[Any, Any]] = {}

    def register(self, subject: str) -> int:
        """Register this codec's schema under ``subject``; from now on it encodes."""
        schema_id = self.registry.register(subject, self.declared)
        self.schema_id = schema_id
        self._prefix = header(schema_id)
        return schema_id

    def encode(self, record: dict[str, Any]) -> bytes:
        """The framed record; raises NotRegistered before :meth:`register`, and
        ``ValueError``-family errors on a shape mismatch."""
        if not self._prefix:
            msg = f"{self.record}: schema not registered yet"
            raise NotRegistered(msg)
        buffer = io.BytesIO()
        buffer.write(self._prefix)
        if self._tag is not None:
            record = self._tag(record)
        schemaless_writer(buffer, self.schema, record, strict_allow_default=True)
        return buffer.getvalue()

    def _plan(self, schema_id: int) -> tuple[Any, Any]:
        plan = self._plans.get(schema_id)
        if plan is None:
            writer = self.registry.writer(schema_id)
            same = to_parsing_canonical_form(writer) == self._canonical
            plan = self._plans[schema_id] = (self.schema, None) if same else (writer, self.schema)
        return plan

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in framed ``data``, read with its writer schema into this codec's.

        Raises AvroDecodeError (NotFramed, UnknownSchema, or a body that does not match its
        schema) and RegistryUnavailable when an unseen writer schema cannot be fetched.
        """
        writer, reader = self._plan(schema_id_of(data, self.record))
        buffer = io.BytesIO(data)
        buffer.seek(HEADER)
        try:
            record = schemaless_reader(
                buffer,
                writer,
                reader,
                return_record_name=True,
                return_record_name_override=True,
            )
        except Exception as exc:
            msg = f"not a valid {self.record} record: {exc!r}"
            raise AvroDecodeError(msg) from exc
        if buffer.tell() != len(data) or not isinstance(record, dict):
            msg = f"not a valid {self.record} record: {len(data) - buffer.tell()} trailing bytes"
            raise AvroDecodeError(msg)
        return record

    def knows(self, schema_id: int) -> bool:
        """Whether records written with ``schema_id`` decode without asking the registry."""
        return schema_id in self._plans

    async def learn_async(self, schema_id: int, *, retry_s: float = 5.0) -> None:
        """Fetch the writer schema ``schema_id`` off the event loop, waiting as long as the
        registry is unavailable (raises UnknownSchema when the registry has no such id)."""
        while schema_id not in self._plans:
            try:
                await asyncio.to_thread(self._plan, schema_id)
            except RegistryUnavailable as exc:
                logger.warning("%s; retrying in %.0fs", exc, retry_s)
                await asyncio.sleep(retry_s)

    async def decode_async(self, data: bytes, *, retry_s: float = 5.0) -> dict[str, Any]:
        """:meth:`decode`, but an unseen writer schema is fetched off the event loop, and
        while the registry is unavailable this waits (the record is not poison) instead of
        failing."""
        schema_id = schema_id_of(data, self.record)
        while schema_id not in self._plans:
            try:
                await asyncio.to_thread(self._plan, schema_id)
            except RegistryUnavailable as exc:
                logger.warning("%s; retrying in %.0fs", exc, retry_s)
                await asyncio.sleep(retry_s)
        return self.decode(data)


@dataclass(frozen=True)
class TopicSchemas:
    """What one service writes and reads, by topic: record names (``schemas/``).

    ``writes``: value records it produces (registered under ``<topic>-value``, framed);
    ``reads``: value records it consumes (writer schemas of every version learnt at start);
    ``keys``: key records (registered under ``<topic>-key`` for discovery; keys unframed).
    """

    writes: Mapping[str, str] = field(default_factory=dict)
    reads: Mapping[str, str] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)


def register_schemas(registry: SchemaRegistry, schemas: TopicSchemas) -> dict[str, FramedCodec]:
    """Register everything in ``schemas`` (BACKWARD enforced on each subject) and learn the
    writer schemas of what is read; a codec per topic of ``writes`` and ``reads``.

    Raises IncompatibleSchema (stop: nothing was written with the refused schema) or
    RegistryUnavailable (try again).
    """
    codecs: dict[str, FramedCodec] = {}
    for topic, record in schemas.keys.items():
        registry.register(key_subject(topic), schema_of(record))
    for topic, record in schemas.writes.items():
        codec = codecs[topic] = FramedCodec(record, registry)
        codec.register(value_subject(topic))
        registry.learn(value_subject(topic))
    for topic, record in schemas.reads.items():
        codecs.setdefault(topic, FramedCodec(record, registry))
        registry.learn(value_subject(topic))
    return codecs
