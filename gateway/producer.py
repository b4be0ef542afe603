"""The gateway's Kafka producer: acks=all, idempotent, murmur2, delivery awaited.

librdkafka delivers reports on whichever thread calls ``poll``; a dedicated thread polls and
hands one result per batch back to the event loop, so a request costs one thread hop. Another
thread asks Kafka for the topic's metadata every second: readiness and the partition count
are read from its last answer, so no request ever waits on a blocking metadata call. Losing
every broker connection (librdkafka's error callback) or a failed check makes the gateway not
ready at once; only a later successful check makes it ready again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from gateway.errors import KafkaUnavailable, PayloadTooLarge
from gateway.events import OutgoingEvent, Tombstone
from gateway.settings import GatewaySettings

__all__ = ["EventProducer", "producer_config"]

logger = logging.getLogger(__name__)

#: How long past the produce deadline a request still waits for librdkafka's report.
REPORT_GRACE_S = 5.0
#: How often the monitor asks for metadata, and how old its last success may be for /readyz.
_MONITOR_INTERVAL_S = 1.0
_MONITOR_TIMEOUT_S = 2.0
_READY_FOR_S = 3 * _MONITOR_INTERVAL_S + _MONITOR_TIMEOUT_S


def producer_config(settings: GatewaySettings) -> dict[str, Any]:
    """librdkafka settings; partitioner and idempotence must be explicit (defaults differ)."""
    return {
        **settings.librdkafka_config(),
        "client.id": "deploystream-gateway",
        # The record limit of the topics (DEPLOYSTREAM_MAX_RECORD_BYTES); the handlers never
        # produce a larger record, this only makes librdkafka agree.
        "message.max.bytes": settings.max_record_bytes,
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


def _too_large(error: object) -> bool:
    """A record over a size limit (librdkafka's own, or the broker's for the topic)."""
    code = error.code() if isinstance(error, KafkaError) else None
    return code in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE)


@dataclass(frozen=True, slots=True)
class _Metadata:
    """The monitor's last successful look at the topic (``at``: when that check began)."""

    at: float
    partitions: int


class EventProducer:
    """Owns one confluent-kafka Producer, its poll thread and its metadata monitor."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._producer = Producer(
            {**producer_config(settings), "error_cb": self._on_error}, logger=logger
        )
        self._running = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._monitor = threading.Thread(target=self._watch, name="kafka-monitor", daemon=True)
        self._metadata: _Metadata | None = None
        #: When Kafka was last seen unreachable: metadata from before then does not count.
        self._down_at = 0.0

    def _on_error(self, error: KafkaError) -> None:
        # Called on the poll thread, as soon as librdkafka loses its last broker connection.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down_at = time.monotonic()
            logger.warning("Kafka unreachable: %s", error)
        else:
            logger.debug("Kafka: %s", error)

    def start(self) -> None:
        """Start delivering reports and watching the topic."""
        self._running.set()
        self._thread.start()
        self._monitor.start()

    def _poll(self) -> None:
        while self._running.is_set():
            self._producer.poll(0.1)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            count = self._topic_partitions(_MONITOR_TIMEOUT_S)
            # One reference assignment each: readers on the loop see the old or the new value.
            if count is not None:
                self._metadata = _Metadata(started, count)
            else:
                self._down_at = time.monotonic()
            self._stopping.wait(max(0.0, _MONITOR_INTERVAL_S - (time.monotonic() - started)))

    def _topic_partitions(self, timeout: float) -> int | None:
        """Partitions of the deployments topic, ``None`` when Kafka does not say (blocking)."""
        topic_name = self._settings.deployments_topic
        try:
            metadata = self._producer.list_topics(topic_name, timeout)
        except KafkaException:
            return None
        topic = metadata.topics.get(topic_name)
        if not metadata.brokers or topic is None or topic.error is not None:
            return None
        return len(topic.partitions) or None

    def _unavailable(self) -> KafkaUnavailable:
        return KafkaUnavailable(headers={"Retry-After": str(self._settings.retry_after_s)})

    def _record_too_large(self) -> PayloadTooLarge:
        # Never a 503: a retry would be refused the same way, forever.
        msg = (
            f"A record is over the {self._settings.max_record_bytes}-byte record limit "
            "(DEPLOYSTREAM_MAX_RECORD_BYTES) of the topic."
        )
        return PayloadTooLarge(msg)

    async def send(self, topic: str, events: Sequence[OutgoingEvent | Tombstone]) -> None:
        """Produce ``events`` in order and return once the broker acknowledged all of them.

        Raises KafkaUnavailable when any is refused or not acknowledged in time, and
        PayloadTooLarge when a record is over the record limit.
        """
        if not events:
            return
        loop = asyncio.get_running_loop()
        batch = _Batch(loop, len(events))
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
            if exc.args and _too_large(exc.args[0]):
                raise self._record_too_large() from exc
            # Already-queued events of this batch may still be written: harmless, since the
            # client retries and the sequence-number rule absorbs the duplicate.
            raise self._unavailable() from exc
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
            raise self._unavailable() from exc
        except KafkaException as exc:
            if _too_large(batch.error):
                raise self._record_too_large() from exc
            logger.warning("Kafka did not acknowledge %d events: %r", len(events), exc)
            raise self._unavailable() from exc

    def _current(self) -> _Metadata | None:
        metadata = self._metadata
        if metadata is None or metadata.at <= self._down_at:
            return None
        return metadata if time.monotonic() - metadata.at <= _READY_FOR_S else None

    def partition_count(self) -> int:
        """Partitions of the deployments topic, as the monitor last saw them (503 when Kafka
        is not reachable now)."""
        metadata = self._current()
        if metadata is None:
            raise self._unavailable()
        return metadata.partitions

    def ready(self) -> bool:
        """True when the monitor's last check reached the topic, lately (never blocks)."""
        return self._current() is not None

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the threads."""
        remaining = self._producer.flush(timeout)
        if remaining:
            logger.error("%d events were not delivered before shutdown", remaining)
        self._running.clear()
        self._stopping.set()
        for thread in (self._thread, self._monitor):
            if thread.is_alive():
                thread.join()
