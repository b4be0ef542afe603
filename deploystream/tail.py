"""``deploystream tail``: the records of a topic as JSON lines, decoded through the registry.

Values are read with the writer schema their id names (fetched once from the registry), so
the tool shows what is on the topic, whichever version of deploystream wrote it. Keys are
schemaless Avro; they are read with the latest schema of ``<topic>-key`` (dead letters keep
the original record's key: the deployments topic's key schema). A record that does not
decode is printed with ``error`` and its bytes in base64, never skipped.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator
from typing import Any

import click
import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from fastavro import schemaless_reader

from schemas import AvroDecodeError
from schemas.registry import HEADER, RegistryError, SchemaRegistry, key_subject, schema_id_of

__all__ = ["tail"]

DEFAULT_REGISTRY_URL = "http://127.0.0.1:8081/apis/ccompat/v7"


def _bytes_as_base64(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError


class _Decoder:
    """Keys and values of one topic; writer schemas fetched once per id."""

    def __init__(self, registry: SchemaRegistry, key_topic: str) -> None:
        self._registry = registry
        self._key_topic = key_topic
        self._key_schema: Any = None

    def value(self, data: bytes) -> dict[str, Any]:
        schema_id = schema_id_of(data)
        buffer = io.BytesIO(data)
        buffer.seek(HEADER)
        record = schemaless_reader(buffer, self._registry.writer(schema_id), None, True, True)
        return {"schemaId": schema_id, "value": record}

    def key(self, data: bytes) -> Any:
        if self._key_schema is None:
            self._key_schema = self._registry.latest(key_subject(self._key_topic))[1]
        return schemaless_reader(io.BytesIO(data), self._key_schema, None)


def _render(message: Any, decoder: _Decoder) -> dict[str, Any]:
    line: dict[str, Any] = {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp()[1],
    }
    key, value = message.key(), message.value()
    try:
        line["key"] = None if key is None else decoder.key(key)
    except Exception:  # a poison record's key (dead letters keep them as they came)
        line["key"] = key
    if value is None:
        line["value"] = None  # a tombstone
        return line
    try:
        line.update(decoder.value(value))
    except (AvroDecodeError, RegistryError, ValueError, EOFError) as exc:
        line["error"] = str(exc)
        line["raw"] = value
    return line


def _messages(
    consumer: Consumer, topic: str, from_beginning: bool, lines: int, follow: bool
) -> Iterator[Any]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    if not partitions:
        msg = f"topic {topic!r} does not exist"
        raise click.ClickException(msg)
    ends: dict[int, int] = {}
    assignment = []
    for partition in sorted(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        start = low if from_beginning else max(low, high - lines)
        assignment.append(TopicPartition(topic, partition, start))
        if high > start:
            ends[partition] = high
    consumer.assign(assignment)
    while follow or ends:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            raise KafkaException(message.error())
        yield message
        partition = int(message.partition() or 0)
        if int(message.offset() or 0) + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)


@click.command()
@click.option(
    "--topic",
    "which",
    type=click.Choice(["state", "events", "dead-letters"]),
    default="state",
    show_default=True,
    help="state: current deployments; events: what the gateway accepted; dead-letters.",
)
@click.option("--from-beginning", is_flag=True, help="Every record, not only the last ones.")
@click.option("-n", "--lines", default=10, show_default=True, help="Last records per partition.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records until Ctrl-C.")
@click.option(
    "--bootstrap",
    envvar="DEPLOYSTREAM_KAFKA_BOOTSTRAP",
    default="127.0.0.1:9092",
    show_default=True,
)
@click.option(
    "--registry-url",
    envvar="DEPLOYSTREAM_SCHEMA_REGISTRY_URL",
    default=DEFAULT_REGISTRY_URL,
    show_default=True,
)
@click.option(
    "--deployments-topic",
    envvar="DEPLOYSTREAM_DEPLOYMENTS_TOPIC",
    default="deployments",
    show_default=True,
)
@click.option(
    "--state-topic", envvar="DEPLOYSTREAM_STATE_TOPIC", default=None, help="[<deployments>-state]"
)
@click.option(
    "--dead-letter-topic",
    envvar="DEPLOYSTREAM_DEAD_LETTER_TOPIC",
    default=None,
    help="[<deployments>-dead-letter]",
)
def tail(
    which: str,
    from_beginning: bool,
    lines: int,
    follow: bool,
    bootstrap: str,
    registry_url: str,
    deployments_topic: str,
    state_topic: str | None,
    dead_letter_topic: str | None,
) -> None:
    """Print a topic's records as JSON lines, keys and values decoded through the schema
    registry (the last records of each partition, or every one with --from-beginning)."""
    topic = {
        "events": deployments_topic,
        "state": state_topic or f"{deployments_topic}-state",
        "dead-letters": dead_letter_topic or f"{deployments_topic}-dead-letter",
    }[which]
    key_topic = topic if which == "state" else deployments_topic
    registry = SchemaRegistry(registry_url)
    decoder = _Decoder(registry, key_topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"deploystream-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        for message in _messages(consumer, topic, from_beginning, lines, follow):
            line = orjson.dumps(_render(message, decoder), default=_bytes_as_base64)
            click.echo(line.decode())
    except KeyboardInterrupt:
        pass
    except KafkaException as exc:
        msg = f"cannot read {topic!r} at {bootstrap}: {exc}"
        raise click.ClickException(msg) from exc
    finally:
        consumer.close()
        registry.close()
