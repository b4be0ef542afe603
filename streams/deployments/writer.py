"""Changelog first: a batch's records reach Kafka before anything reaches RocksDB.

:class:`ChangelogWriter` produces a batch's changelog records (and dead letters) with a
confluent-kafka producer of its own — idempotent, acks=all, every changelog record to the
partition of the input record that caused it, with the ``deploystream-source-offset`` header
— and waits for every delivery report. Only then does :func:`write_local` write the final
value of each key into the partition's RocksDB database, in one write batch that also
carries the changelog offset of the last record (faust's persisted offset, where recovery
and standbys resume). So a worker's local store is always a prefix of its changelog, and
the input offsets of a batch are committed only after both.

The table's records (and dead letters) are delivered before the index's: the index
changelog never holds a change whose table record is missing. A crash between the two
leaves the table ahead of its index, which replay repairs; the other way round, a
delete-by-properties replayed after its index removals had landed found no candidates in
the index, and its deletes were lost (chaos worker seed 16).

A failed delivery is retried (the whole remainder of the affected changelog partition, in
order: duplicates are harmless on a compacted changelog, a reordering would not be) until it
succeeds or the worker stops; a batch that stops undelivered is never written locally nor
acknowledged, so its input records are applied again by the next owner of the partition.

This module and :mod:`streams.deployments.intake` are the only ones that touch faust's
internals (``Store._db_for_partition``, ``Store.offset_key``), pinned by faust < 0.16.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.deployments.batch import PartitionBatch
from streams.deployments.renderings import OFFSET_KEY, Renderer
from streams.errors import StreamsError

__all__ = [
    "OFFSET_KEY",
    "ChangelogWriter",
    "Headers",
    "Outgoing",
    "changelog_producer_config",
    "write_local",
]

logger = logging.getLogger(__name__)


Headers = list[tuple[str, str | bytes | None]]
#: One record to produce: topic, partition (None lets the partitioner choose: dead
#: letters), key, value, headers. A plain tuple, like the table records it is made from.
Outgoing = tuple[str, int | None, bytes | None, bytes | None, Headers | None]


@dataclass
class _Reports:
    """Delivery reports of one round (filled by librdkafka's callbacks, in the flushing
    thread): the highest offset per (topic, partition), and the groups that failed."""

    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    failed: dict[tuple[str, int], KafkaError] = field(default_factory=dict)
    fatal: bool = False

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        where = (message.topic(), message.partition())
        if error is not None:
            self.failed[where] = error
            self.fatal = self.fatal or error.fatal()
            return
        offset = message.offset()
        if offset > self.offsets.get(where, -1):
            self.offsets[where] = offset

    def must_retry(self, record: Outgoing) -> bool:
        """Whether ``record`` belongs to a group that failed: its changelog partition, or
        for a record the partitioner placed (a dead letter), its topic."""
        topic, partition = record[0], record[1]
        if partition is None:
            return any(failed == topic for failed, _ in self.failed)
        return (topic, partition) in self.failed


def changelog_producer_config(base: Mapping[str, Any], max_record_bytes: int) -> dict[str, Any]:
    """The producer for changelogs and dead letters: nothing acknowledged is ever lost or
    reordered (idempotence: acks=all, ordered retries), and no delivery gives up on its own
    (``message.timeout.ms`` 0 is infinite): the writer decides when to stop waiting."""
    return {
        **base,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,
        "compression.type": "lz4",
        # A batch is flushed as a whole (flush ignores linger); this only bounds the wait
        # of records produced while a flush is under way.
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "message.max.bytes": max_record_bytes + 1024,
        "queue.buffering.max.messages": 1_000_000,
        "client.id": "deploystream-worker-changelog",
    }


class ChangelogWriter:
    """Delivers a batch's records, waiting for Kafka to acknowledge every one."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        stopping: Callable[[], bool],
        stop_grace_s: float = 5.0,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self._config = dict(config)
        # Created on first use: building the app connects to nothing.
        self._client: Producer | None = None
        self._stopping = stopping
        self._stop_grace_s = stop_grace_s
        self._retry_backoff_s = retry_backoff_s
        #: Seconds the last delivery waited for a failing or unreachable broker (readiness).
        self.stalled_since: float | None = None

    @property
    def _producer(self) -> Producer:
        if self._client is None:
            self._client = Producer(self._config)
        return self._client

    def _produce(self, records: Sequence[Outgoing], reports: _Reports) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        for topic, partition, key, value, headers in records:
            while True:
                try:
                    if partition is None:
                        produce(topic, value, key, headers=headers, on_delivery=reports)
                    else:
                        produce(
                            topic,
                            value,
                            key,
                            partition=partition,
                            headers=headers,
                            on_delivery=reports,
                        )
                    break
                except BufferError:
                    poll(0.05)

    async def _flush(self) -> bool:
        """Wait until every produced record has its delivery report; False when the worker
        stopped first (after a grace period for a flush under way)."""
        stop_deadline: float | None = None
        while True:
            remaining = await asyncio.to_thread(self._producer.flush, 0.5)
            if not remaining:
                return True
            if self.stalled_since is None:
                self.stalled_since = time.monotonic()
            if self._stopping():
                now = time.monotonic()
                stop_deadline = stop_deadline or now + self._stop_grace_s
                if now > stop_deadline:
                    return False

    async def deliver(self, records: Sequence[Outgoing]) -> dict[tuple[str, int], int] | None:
        """Produce ``records`` in order and wait for all of them: the offset of the last
        record per (topic, partition), or None when the worker stopped first."""
        pending = list(records)
        offsets: dict[tuple[str, int], int] = {}
        attempt = 0
        while pending:
            reports = _Reports()
            try:
                self._produce(pending, reports)
            except KafkaException as exc:
                # Only a local misconfiguration (unknown topic, size) gets here: nothing
                # of this batch can be made durable until an operator acts.
                msg = f"cannot produce changelog records: {exc}"
                raise StreamsError(msg) from exc
            if not await self._flush():
                return None
            offsets.update(reports.offsets)
            if not reports.failed:
                self.stalled_since = None
                return offsets
            attempt += 1
            if self.stalled_since is None:
                self.stalled_since = time.monotonic()
            logger.error(
                "changelog delivery failed (attempt %d), retrying: %s",
                attempt,
                "; ".join(f"{t}[{p}]: {e}" for (t, p), e in reports.failed.items()),
            )
            if reports.fatal:
                # An idempotent producer that hit a fatal error accepts nothing more.
                self._client = Producer(self._config)
            pending = [record for record in pending if reports.must_retry(record)]
            if self._stopping():
                return None
            await asyncio.sleep(min(self._retry_backoff_s * attempt, 5.0))
        return offsets

    async def deliver_in_order(
        self, phases: Sequence[Sequence[Outgoing]]
    ) -> dict[tuple[str, int], int] | None:
        """:meth:`deliver` each phase, the next only once Kafka acknowledged all of the one
        before: what a later phase says can never be in Kafka without what an earlier one
        says. None when the worker stopped first."""
        offsets: dict[tuple[str, int], int] = {}
        for records in phases:
            if not records:
                continue
            delivered = await self.deliver(records)
            if delivered is None:
                return None
            offsets.update(delivered)
        return offsets

    def close(self, timeout: float = 2.0) -> None:
        """Send what can still be sent (nothing here is acknowledged to anyone)."""
        if self._client is not None:
            self._client.flush(timeout)


def write_local(
    batch: PartitionBatch,
    state_db: Any,
    index_db: Any,
    state_offset: int | None,
    index_offset: int | None,
    write_batch: Callable[[], Any],
    renderer: Renderer | None = None,
) -> None:
    """Write a delivered batch of one partition into its RocksDB databases: the final value
    of each key and the changelog offset of its last record, in one write per database.
    With a ``renderer``, the same write removes the listing of every key it writes (a
    listing present is current: streams.deployments.renderings). It does not mark the
    listings in step with the offset: see there why."""
    if state_offset is not None:
        writes = write_batch()
        removals = None if renderer is None else renderer.removals(state_db)
        for key, encoded in batch.final_state():
            if encoded is None:
                writes.delete(key)
            else:
                writes.put(key, encoded)
            if removals is not None:
                removals.remove(writes, key)
        writes.put(OFFSET_KEY, str(state_offset).encode())
        state_db.write(writes)
    if index_offset is not None:
        writes = write_batch()
        for key, entry in batch.final_index():
            if entry is None:
                writes.delete(key)
            else:
                writes.put(key, entry)
        writes.put(OFFSET_KEY, str(index_offset).encode())
        index_db.write(writes)


def group_offsets(
    offsets: Mapping[tuple[str, int], int], topics: Sequence[str]
) -> dict[int, list[int | None]]:
    """Per partition, the last offset in each of ``topics`` (None: nothing written there)."""
    by_partition: dict[int, list[int | None]] = defaultdict(lambda: [None] * len(topics))
    for (topic, partition), offset in offsets.items():
        if topic in topics:
            by_partition[partition][topics.index(topic)] = offset
    return by_partition
