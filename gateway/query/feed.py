"""The change stream's parts that hold no request: the state-topic reader and rendering."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from gateway.errors import BadRequest
from schemas import AvroCodec
from schemas.registry import FramedCodec

__all__ = ["HEARTBEAT_S", "ChangeStreams", "event_id", "parse_event_id", "tenant_prefix"]

#: A comment line sent when nothing happened for this long (keeps proxies from closing).
HEARTBEAT_S = 15.0
#: How long one read of the topic waits for records.
POLL_S = 0.5
_ID = re.compile(r"\A1:(\d+(?:,\d+)*)\Z")


def tenant_prefix(value: str) -> bytes:
    """The bytes every DeploymentKey of tenant ``value`` starts with (an Avro string)."""
    data = value.encode()
    n = len(data) << 1
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def event_id(positions: list[int]) -> str:
    """The id of an event after which each partition resumes at ``positions``."""
    return "1:" + ",".join(map(str, positions))


def parse_event_id(raw: str, partitions: int) -> list[int]:
    """Positions from a ``Last-Event-ID`` (BadRequest when it is not one of ours)."""
    match = _ID.match(raw)
    if match is None:
        msg = "Last-Event-ID: not an event id of this stream"
        raise BadRequest(msg)
    positions = [int(p) for p in match.group(1).split(",")]
    if len(positions) != partitions:
        msg = "Last-Event-ID: not an event id of this stream (partitions differ)"
        raise BadRequest(msg)
    return positions


class ChangeStreams:
    """The gateway's change streams: their count and what they share."""

    def __init__(
        self, kafka: Mapping[str, str], topic: str, limit: int, values: FramedCodec
    ) -> None:
        self.kafka = dict(kafka)
        self.topic = topic
        self.limit = limit
        self.open = 0
        # Keys are plain Avro (their bytes are the partitioning and lookup key); values are
        # framed and read with whatever writer schema the worker registered.
        self.keys = AvroCodec("DeploymentKey")
        self.values = values
        self.closing = asyncio.Event()

    def reader(self, last_event_id: str | None) -> tuple[Consumer, list[int]]:
        """A consumer of the state topic (in no group) placed where the stream starts:
        after ``last_event_id``, or at the end of every partition (blocking; raises
        KafkaException when Kafka does not answer, BadRequest for a foreign event id)."""
        consumer = Consumer(
            {
                **self.kafka,
                "group.id": "deploystream-change-stream",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "fetch.wait.max.ms": 100,
            }
        )
        try:
            topic = consumer.list_topics(self.topic, 10).topics.get(self.topic)
            count = len(topic.partitions) if topic is not None and topic.error is None else 0
            if count == 0:
                msg = f"topic {self.topic} has no partitions"
                raise KafkaException(msg)
            if last_event_id:
                positions = parse_event_id(last_event_id, count)
            else:
                positions = [
                    consumer.get_watermark_offsets(TopicPartition(self.topic, p), 10)[1]
                    for p in range(count)
                ]
            consumer.assign([TopicPartition(self.topic, p, o) for p, o in enumerate(positions)])
        except BaseException:
            consumer.close()
            raise
        return consumer, positions

    async def render(self, key: bytes, value: bytes | None) -> tuple[str, bytes]:
        """The event name and JSON data of one state-topic record (waits while the registry
        is unavailable for a writer schema not seen yet; ValueError when undecodable)."""
        fields = self.keys.decode(key)
        if value is None:
            data = {
                "pipelineId": fields["pipelineId"],
                "environmentId": fields["environmentId"],
                "deploymentSequenceNumber": fields["deploymentSequenceNumber"],
            }
            return "deleted", orjson.dumps(data)
        stored = await self.values.decode_async(value)
        rendered = _without_nulls(stored["deployment"])
        rendered["pipelineId"] = fields["pipelineId"]
        rendered["environmentId"] = fields["environmentId"]
        return "deployment", orjson.dumps(rendered)
