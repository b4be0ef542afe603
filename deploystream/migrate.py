"""``deploystream frame-topics``: move an installation's schemaless data to the wire format.

Before the schema registry, every value was schemaless Avro. The workers restore their tables
from two compacted topics, the state topic and the property index's changelog, and other
services read the state topic: their current values must be framed. For each key whose
latest value there is schemaless, this writes the same value again, framed, to the same
partition (compaction later drops the old one). Restarted workers restore the framed values
on top of whatever their RocksDB holds, so no local data has to be deleted. Each written
record carries the partition's last ``deploystream-source-offset`` mark, so replays after
the upgrade skip what they skipped before.

The deployments topic is append-only and is not rewritten: it must be fully applied first
(workers stopped, nothing left to read), which is checked. Its old events stay until its
retention removes them; the worker never reads them again. Old dead letters stay as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas import AvroCodec, AvroDecodeError
from schemas.registry import MAGIC, FramedCodec, SchemaRegistry, value_subject
from streams.deployments.progress import SOURCE_OFFSET_HEADER

__all__ = ["MigrationRefused", "frame_topic", "frame_topics", "require_applied"]

_IDLE = {ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD, ConsumerGroupState.UNKNOWN}


class MigrationRefused(click.ClickException):
    """The topics cannot be migrated now (workers running, or events not applied yet)."""


@dataclass(frozen=True)
class Latest:
    """The latest record of one key on one partition."""

    partition: int
    value: bytes | None


def _records(bootstrap: str, topic: str) -> Iterator[Any]:
    """Every record of ``topic`` up to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"deploystream-frame-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends, assignment = {}, []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        while ends:
            message = consumer.poll(10)
            if message is None:
                msg = f"{topic}: no record within 10 s, still expecting {ends}"
                raise click.ClickException(msg)
            if message.error() is not None:
                raise click.ClickException(str(message.error()))
            yield message
            partition = int(message.partition() or 0)
            if int(message.offset() or 0) + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
    finally:
        consumer.close()


def require_applied(bootstrap: str, group: str, topic: str) -> None:
    """Refuse unless ``group`` (the workers) is stopped and has committed all of ``topic``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(30)
    if described.state not in _IDLE:
        msg = f"consumer group {group!r} is {described.state.name}: stop the workers first"
        raise MigrationRefused(msg)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        committed = consumer.committed(tps, timeout=30)
        behind = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            done = tp.offset if tp.offset >= 0 else low
            if done < high:
                behind.append(f"{tp.partition}: {high - done}")
    finally:
        consumer.close()
    if behind:
        msg = (
            f"the workers have not applied every record of {topic!r} (partition: records "
            f"left {', '.join(behind)}): let them catch up with the gateways stopped, then "
            "stop them and run this again"
        )
        raise MigrationRefused(msg)


def frame_topic(bootstrap: str, topic: str, plain: AvroCodec, framed: FramedCodec) -> int:
    """Write a framed copy of every key's latest value that is schemaless; how many."""
    latest: dict[bytes, Latest] = {}
    marks: dict[int, bytes] = {}
    for message in _records(bootstrap, topic):
        partition = int(message.partition() or 0)
        latest[message.key()] = Latest(partition, message.value())
        for name, value in message.headers() or ():
            if name == SOURCE_OFFSET_HEADER:
                marks[partition] = value
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    written = 0
    for key, record in latest.items():
        value = record.value
        if value is None or (len(value) >= 5 and value[0] == MAGIC and _is_framed(framed, value)):
            continue
        try:
            decoded = plain.decode(value)
        except AvroDecodeError as exc:
            msg = f"{topic}: a value is neither framed nor a schemaless {plain.name}: {exc}"
            raise click.ClickException(msg) from exc
        mark = marks.get(record.partition)
        headers: list[tuple[str, str | bytes | None]] | None = (
            [(SOURCE_OFFSET_HEADER, mark)] if mark is not None else None
        )
        producer.produce(
            topic, framed.encode(decoded), key, partition=record.partition, headers=headers
        )
        written += 1
        producer.poll(0)
    if producer.flush(60):
        msg = f"{topic}: records were not acknowledged"
        raise click.ClickException(msg)
    return written


def _is_framed(framed: FramedCodec, value: bytes) -> bool:
    # A schemaless value can start with a zero byte too: framed means it also decodes so.
    try:
        framed.decode(value)
    except AvroDecodeError:
        return False
    return True


def frame_topics(
    bootstrap: str, registry: SchemaRegistry, group: str, events: str, tables: dict[str, str]
) -> dict[str, int]:
    """Check that ``events`` is applied, then frame each topic of ``tables`` (topic -> record
    name); records written per topic."""
    require_applied(bootstrap, group, events)
    written = {}
    for topic, record in tables.items():
        framed = FramedCodec(record, registry)
        framed.register(value_subject(topic))
        written[topic] = frame_topic(bootstrap, topic, AvroCodec(record), framed)
    return written


@click.command("frame-topics")
@click.option("--bootstrap", envvar="DEPLOYSTREAM_KAFKA_BOOTSTRAP", default="127.0.0.1:9092")
@click.option(
    "--registry-url",
    envvar="DEPLOYSTREAM_SCHEMA_REGISTRY_URL",
    default="http://127.0.0.1:8081/apis/ccompat/v7",
)
@click.option("--deployments-topic", envvar="DEPLOYSTREAM_DEPLOYMENTS_TOPIC", default="deployments")
@click.option("--state-topic", envvar="DEPLOYSTREAM_STATE_TOPIC", default="deployments-state")
@click.option("--app-id", envvar="DEPLOYSTREAM_APP_ID", default="deploystream")
def frame_topics_command(
    bootstrap: str, registry_url: str, deployments_topic: str, state_topic: str, app_id: str
) -> None:
    """Upgrade from schemaless topics: frame the latest value of every key of the state topic
    (workers stopped, every event applied). The index of earlier versions lived in another
    topic; the workers rebuild theirs from the table."""
    tables = {state_topic: "StoredDeployment"}
    with SchemaRegistry(registry_url) as registry:
        written = frame_topics(bootstrap, registry, app_id, deployments_topic, tables)
    for topic, count in written.items():
        click.echo(f"{topic}: {count} values framed")
