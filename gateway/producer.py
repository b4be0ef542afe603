"""The gateway's Kafka producer: acks=all, idempotent, murmur2, delivery awaited.

librdkafka delivers reports on whichever thread calls ``poll``; a dedicated thread polls and
hands one result per batch back to the event loop, so a request costs one thread hop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from gateway.errors import KafkaUnavailable
from gateway.events import OutgoingEvent, Tombstone
from gateway.settings import GatewaySettings

__all__ = ["EventProducer", "producer_config"]

logger = logging.getLogger(__name__)

#: How long past the produce deadline a request still waits for librdkafka's report.
REPORT_GRACE_S = 5.0


def producer_config(settings: GatewaySettings) -> dict[str, Any]:
    """librdkafka settings; partitioner and idempotence must be explicit (defaults differ)."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": "deploystream-gateway",
        "acks": "all",
        "enable.idempotence": True,
        # Same partition as faust/aiokafka (Java-compatible murmur2) for the same key bytes.
        "partitioner": "murmur2_random",
        "linger.ms": settings.linger_ms,
        "compression.type": "lz4",
        # librdkafka gives up on a message (and reports it) within the request's deadline,
        # in-flight produce requests included (they time out at the message's remaining
        # timeout): once it has, the event can no longer land, so the 503 that follows is
        # true. (A 503 answered while librdkafka still retried let a submission land after
        # the client's next, acknowledged, request.)
        "message.timeout.ms": max(1000, int(settings.produce_timeout_s * 1000)),
        "socket.connection.setup.timeout.ms": 3000,
        "reconnect.backoff.max.ms": 1000,
    }


class _Batch:
    """Counts delivery reports of one request; resolves its future once, on the loop."""

    __slots__ = ("error", "future", "loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.pending = count
        self.error: KafkaError | None = None

    def on_delivery(self, error: KafkaError | None, _message: object) -> None:
        # Runs on the poll thread only, so the counter needs no lock.
        if error is not None and self.error is None:
            self.error = error
        self.pending -= 1
        if self.pending == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(KafkaException(self.error))
        else:
            self.future.set_result(None)


class EventProducer:
    """Owns one confluent-kafka Producer and its poll thread."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._producer = Producer(producer_config(settings), logger=logger)
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)

    def start(self) -> None:
        """Start delivering reports."""
        self._running.set()
        self._thread.start()

    def _poll(self) -> None:
        while self._running.is_set():
            self._producer.poll(0.1)

    async def send(self, topic: str, events: Sequence[OutgoingEvent | Tombstone]) -> None:
        """Produce ``events`` in order and return once the broker acknowledged all of them.

        Raises KafkaUnavailable when any is refused or not acknowledged in time.
        """
        if not events:
            return
        loop = asyncio.get_running_loop()
        batch = _Batch(loop, len(events))
        retry_after = {"Retry-After": str(self._settings.retry_after_s)}
        try:
            for event in events:
                if event.partition is None:
                    self._producer.produce(
                        topic, event.value, event.key, on_delivery=batch.on_delivery
                    )
                else:
                    self._producer.produce(
                        topic,
                        event.value,
                        event.key,
                        partition=event.partition,
                        on_delivery=batch.on_delivery,
                    )
        except (BufferError, KafkaException) as exc:
            # Already-queued events of this batch may still be written: harmless, since the
            # client retries and the sequence-number rule absorbs the duplicate.
            raise KafkaUnavailable(headers=retry_after) from exc
        try:
            # The answer waits for librdkafka's verdict on every event (it comes within
            # message.timeout.ms): answering earlier could not tell the client whether the
            # events will still be written.
            await asyncio.wait_for(
                asyncio.shield(batch.future),
                timeout=self._settings.produce_timeout_s + REPORT_GRACE_S,
            )
        except TimeoutError as exc:
            logger.error(
                "no delivery report for %d events %.0fs after their deadline",
                len(events),
                REPORT_GRACE_S,
            )
            raise KafkaUnavailable(headers=retry_after) from exc
        except KafkaException as exc:
            logger.warning("Kafka did not acknowledge %d events: %r", len(events), exc)
            raise KafkaUnavailable(headers=retry_after) from exc

    def partition_count(self, timeout: float = 5.0) -> int:
        """Partitions of the deployments topic (blocking; call in an executor)."""
        try:
            metadata = self._producer.list_topics(self._settings.deployments_topic, timeout)
        except KafkaException as exc:
            raise KafkaUnavailable(
                headers={"Retry-After": str(self._settings.retry_after_s)}
            ) from exc
        topic = metadata.topics.get(self._settings.deployments_topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaUnavailable(headers={"Retry-After": str(self._settings.retry_after_s)})
        return len(topic.partitions)

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when the topic's metadata can be fetched (blocking; call in an executor)."""
        try:
            metadata = self._producer.list_topics(self._settings.deployments_topic, timeout)
        except KafkaException:
            return False
        topic = metadata.topics.get(self._settings.deployments_topic)
        return bool(metadata.brokers) and topic is not None and topic.error is None

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the poll thread."""
        remaining = self._producer.flush(timeout)
        if remaining:
            logger.error("%d events were not delivered before shutdown", remaining)
        self._running.clear()
        if self._thread.is_alive():
            self._thread.join()
