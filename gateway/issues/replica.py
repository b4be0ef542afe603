"""Each gateway's copy of the issue registry: the whole compacted topic, read from the beginning
and then followed by a background consumer, kept in an :class:`IssueIndex`.

The copy is as fresh as the consumer: ``caught_up`` once every partition was read to its end
after start (before that, a registry tenant's submission gets 503 rather than an answer from a
half-read registry), and ``lag`` (records on the topic not applied yet, measured once a second
from the consumer's own fetch state, without a request to the broker) after that. Both are in
``/readyz``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from gateway.issues.index import IssueIndex
from gateway.issues.records import IssueCodecs, IssueInfo
from gateway.issues.topic import IssuesTopicError, ensure_issues_topic
from gateway.settings import GatewaySettings
from schemas import AvroDecodeError
from schemas.registry import FramedCodec, SchemaRegistry

__all__ = ["IssueReplica", "client_config"]

logger = logging.getLogger(__name__)

_POLL_S = 0.2
_LAG_EVERY_S = 1.0
_MAX_BACKOFF_S = 5.0
#: A thread stuck in an admin call to an unreachable broker is not waited for longer: it is
#: a daemon thread, and it holds nothing that must be flushed.
_CLOSE_WAIT_S = 5.0


def client_config(settings: GatewaySettings) -> dict[str, Any]:
    """librdkafka settings shared by the registry's admin client and consumer (bootstrap
    and security, as every Kafka client of the gateway)."""
    return dict(settings.librdkafka_config())


class IssueReplica:
    """The registry topic in memory, followed by a consumer thread."""

    def __init__(self, settings: GatewaySettings, codecs: IssueCodecs | None = None) -> None:
        self.index = IssueIndex()
        self._settings = settings
        self.codecs = codecs or IssueCodecs(
            FramedCodec("KnownIssue", SchemaRegistry(settings.schema_registry_url))
        )
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._lag: int | None = None
        #: Records that were not IssueKey/KnownIssue (written by someone else): skipped.
        self.undecodable = 0
        self._thread = threading.Thread(target=self._run, name="issue-replica", daemon=True)

    # -- lookups (no I/O) -----------------------------------------------------------------

    def known(self, tenant: str, issue_key: str) -> IssueInfo | None:
        """The issue ``issue_key`` of ``tenant``'s Jira site, or None when it is not known."""
        return self.index.known(tenant, issue_key)

    @property
    def caught_up(self) -> bool:
        """Whether the topic was read to its end once since start."""
        return self._caught_up.is_set()

    def wait_caught_up(self, timeout: float) -> bool:
        """Block until :attr:`caught_up` (True) or ``timeout`` seconds passed (False)."""
        return self._caught_up.wait(timeout)

    def freshness(self) -> dict[str, Any]:
        """What ``/readyz`` reports: caught up, records behind (None before it is known),
        issues known."""
        return {"caughtUp": self.caught_up, "lag": self._lag, "known": len(self.index)}

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Apply one record of the topic (the consumer does; so does a webhook for what it
        just wrote, so that this gateway knows it at once)."""
        try:
            tenant, issue_key, issue = self.codecs.decode(key, value)
        except AvroDecodeError as exc:
            self.undecodable += 1
            logger.warning("skipping a record of the issue registry topic: %s", exc)
            return
        self.index.apply(tenant, issue_key, issue)

    # -- the consumer thread --------------------------------------------------------------

    def start(self) -> None:
        """Start reading the topic in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop the consumer thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_CLOSE_WAIT_S)
            if self._thread.is_alive():
                logger.warning("the issue registry consumer did not stop in time")

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
            except (KafkaException, IssuesTopicError) as exc:
                logger.warning("issue registry: %s; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _follow(self) -> None:
        settings = self._settings
        topic = settings.issues_topic
        partitions = ensure_issues_topic(
            client_config(settings), topic, settings.issues_partitions, settings.replication_factor
        )
        consumer = Consumer(
            {
                **client_config(settings),
                "client.id": "deploystream-gateway-issues",
                # Never joins or commits: partitions are assigned, offsets start at 0 each time.
                "group.id": f"deploystream-gateway-issues-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            },
            logger=logger,
        )
        try:
            assigned = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
            consumer.assign(assigned)
            self._consume(consumer, assigned)
        finally:
            consumer.close()

    def _consume(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        at_end: set[int] = set()
        next_lag = time.monotonic()
        while not self._stop.is_set():
            message = consumer.poll(_POLL_S)
            if time.monotonic() >= next_lag:
                self._lag = _lag(consumer, assigned)
                next_lag = time.monotonic() + _LAG_EVERY_S
            if message is None:
                continue
            error = message.error()
            if error is None:
                self.apply(message.key() or b"", message.value())
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition() or 0)
                if len(at_end) == len(assigned) and not self._caught_up.is_set():
                    self._lag = 0
                    self._caught_up.set()
                    logger.info("issue registry loaded: %d issues", len(self.index))
            elif error.fatal():
                raise KafkaException(error)
            else:
                logger.debug("issue registry consumer: %s", error)


def _lag(consumer: Consumer, assigned: list[TopicPartition]) -> int | None:
    """Records behind the last fetched end of every partition; None while unknown."""
    total = 0
    for position in consumer.position(assigned):
        low, high = consumer.get_watermark_offsets(position, cached=True)
        if high < 0:
            return None
        offset = position.offset if position.offset >= 0 else low
        total += max(0, high - offset)
    return total
