"""The agent that applies DeploymentEvents to the table, one partition at a time, in order.

Besides the deployments table it maintains the property index of the same partition, so a
delete-by-properties command touches only the deployments that carry the properties.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

import faust

from schemas import AvroCodec, AvroDecodeError
from schemas.registry import FramedCodec, RecordCodec
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import BUCKETS, bucket_of, index_changes
from streams.deployments.progress import ReplayGuard
from streams.deployments.records import (
    DELETED_BY_PROPERTIES,
    Delete,
    Put,
    apply_event,
    matches_properties,
)
from streams.metrics import WorkerMetrics

__all__ = ["DeploymentApplier", "register_agents"]

logger = logging.getLogger(__name__)


class DeploymentApplier:
    """Applies decoded events to the deployments table and its property index."""

    def __init__(
        self, table: Any, index: Any, policy: GatingPolicy, metrics: WorkerMetrics
    ) -> None:
        self.table = table
        self.index = index
        self.policy = policy
        self.metrics = metrics
        self._index_key = AvroCodec("PropertyIndexKey")

    def _entry_key(self, tenant: str, name: str, value: str, bucket: int) -> bytes:
        return self._index_key.encode(
            {"tenant": tenant, "name": name, "value": value, "bucket": bucket}
        )

    def _reindex(self, key: bytes, tenant: str, old: dict[str, str], new: dict[str, str]) -> None:
        removed, added = index_changes(old, new)
        bucket = bucket_of(key)
        for pairs, adding in ((removed, False), (added, True)):
            for name, value in pairs:
                entry_key = self._entry_key(tenant, name, value, bucket)
                entry = self.index.get(entry_key)
                keys: list[bytes] = list(entry["keys"]) if entry else []
                if adding and key not in keys:
                    keys.append(key)
                elif not adding and key in keys:
                    keys.remove(key)
                if keys:
                    self.index[entry_key] = {"keys": keys}
                elif entry is not None:
                    del self.index[entry_key]

    def ensure_indexed(self, key: bytes) -> None:
        """List ``key`` under each of its stored properties (after a crash lost index writes
        that its table writes survived)."""
        stored = self.table.get(key)
        if stored is None:
            return
        self._reindex(key, stored["key"]["tenant"], {}, stored["properties"])

    def apply(self, key: bytes | None, event: dict[str, Any]) -> str:
        """Apply one event; returns the outcome's name for metrics."""
        kind, payload = event["payload"]
        if kind == DELETED_BY_PROPERTIES:
            return self._delete_by_properties(event["tenant"], payload)
        if key is None:
            msg = f"{kind} without a key"
            raise AvroDecodeError(msg)
        stored = self.table.get(key)
        outcome = apply_event(stored, event, self.policy)
        tenant = event["tenant"]
        old = stored["properties"] if stored else {}
        if isinstance(outcome, Put):
            self.table[key] = outcome.value
            if outcome.value is not stored:
                self._reindex(key, tenant, old, outcome.value["properties"])
        elif isinstance(outcome, Delete):
            # The memory store (unit tests) raises for a missing key; RocksDB does not.
            with contextlib.suppress(KeyError):
                del self.table[key]
            self._reindex(key, tenant, old, {})
        return type(outcome).__name__.lower()

    def _delete_by_properties(self, tenant: str, payload: dict[str, Any]) -> str:
        properties: dict[str, str] = payload["properties"]
        usn = payload["updateSequenceNumber"]
        # Any one property narrows the candidates; every candidate is checked against all.
        name, value = min(properties.items())
        candidates: set[bytes] = set()
        for bucket in range(BUCKETS):
            entry = self.index.get(self._entry_key(tenant, name, value, bucket))
            if entry:
                candidates.update(entry["keys"])
        removals: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        deleted = 0
        for key in sorted(candidates):
            stored = self.table.get(key)
            if stored is None:
                # Listed but absent: maybe a local delete whose tombstone never reached the
                # state topic (a crash before it was sent); sending it again is harmless. The
                # entry stays: were its removal delivered and this tombstone lost, a restored
                # table would hold the key with nothing listing it.
                with contextlib.suppress(KeyError):
                    del self.table[key]
                continue
            if not matches_properties(stored, properties, usn):
                continue
            with contextlib.suppress(KeyError):
                del self.table[key]
            deleted += 1
            for pair in stored["properties"].items():
                removals[pair].append(key)
        for (prop, val), keys in removals.items():
            self._remove_all(tenant, prop, val, keys)
        self.metrics.deleted_by_properties.inc(deleted)
        return "delete_by_properties"

    def _remove_all(self, tenant: str, name: str, value: str, keys: list[bytes]) -> None:
        by_bucket: dict[int, set[bytes]] = defaultdict(set)
        for key in keys:
            by_bucket[bucket_of(key)].add(key)
        for bucket, gone in by_bucket.items():
            entry_key = self._entry_key(tenant, name, value, bucket)
            entry = self.index.get(entry_key)
            if entry is None:
                continue
            remaining = [k for k in entry["keys"] if k not in gone]
            if remaining:
                self.index[entry_key] = {"keys": remaining}
            else:
                del self.index[entry_key]


def register_agents(
    app: faust.App,
    topic: Any,
    table: Any,
    index: Any,
    policy: GatingPolicy,
    metrics: WorkerMetrics,
    dead_letters: Any,
    guard: ReplayGuard,
    events: FramedCodec,
    letters: RecordCodec,
) -> Any:
    """Attach the apply agent to ``app``; concurrency stays 1 (faust #606). ``events``
    decodes the input topic's records, ``letters`` encodes the dead letters.

    Failure policy: a record that cannot be decoded or applied never stops the partition. It
    is counted, logged and copied to the dead-letter topic (awaited, so before its offset is
    committed), and the records after it are applied.
    """
    applier = DeploymentApplier(table, index, policy, metrics)
    # labels() takes a lock and a dict lookup per call; the outcomes are a handful.
    counters: dict[str, Any] = {}

    async def dead_letter(message: Any, error: str) -> None:
        record = message.message
        letter = {
            "topic": record.tp.topic,
            "partition": record.tp.partition,
            "offset": record.offset,
            "timestamp": int(record.timestamp * 1000) if record.timestamp else None,
            "error": error[:2000],
            "key": record.key,
            "value": record.value,
        }
        metrics.poison.inc()
        logger.error(
            "dead-lettering %s[%d]@%d: %s",
            record.tp.topic,
            record.tp.partition,
            record.offset,
            error,
        )
        sent = await dead_letters.send(key=record.key, value=letters.encode(letter))
        await sent

    async def apply_deployment_events(stream: Any) -> None:
        async for message in stream.events():
            record = message.message
            marks = guard.marks(record.tp.partition)
            try:
                if marks.skip(record.offset):
                    if marks.repair_index(record.offset) and message.key is not None:
                        applier.ensure_indexed(message.key)
                    outcome = "replay_skipped"
                else:
                    # Waits (does not dead-letter) while an unseen writer schema cannot be
                    # fetched: the record is fine, the registry is away.
                    event = await events.decode_async(message.value)
                    outcome = applier.apply(message.key, event)
                    if marks.repair_index(record.offset) and message.key is not None:
                        applier.ensure_indexed(message.key)
            except AvroDecodeError as exc:
                await dead_letter(message, str(exc))
                continue
            except Exception as exc:  # a bug must not stall the partition; the record is kept
                logger.exception("failed to apply a record")
                await dead_letter(message, f"apply failed: {exc!r}")
                continue
            counter = counters.get(outcome)
            if counter is None:
                counter = counters[outcome] = metrics.applied.labels(outcome)
            counter.inc()

    return app.agent(topic, name="apply-deployment-events", concurrency=1)(apply_deployment_events)
