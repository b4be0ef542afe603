"""What one event does to one partition's tables: the deployment and its index entries.

The applier is pure bookkeeping over a :class:`PartitionTables` (in the worker, the overlay
of the batch being applied; in unit tests, dicts): it reads stored state, decides with
:func:`~streams.deployments.records.apply_event`, and writes the deployment and exactly the
index entries it gains or loses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from schemas import AvroDecodeError
from streams.deployments.gating import GatingPolicy
from streams.deployments.index import (
    IndexName,
    decode_entry_key,
    entries_of,
    terms_prefix,
)
from streams.deployments.records import (
    DELETED_BY_PROPERTIES,
    Delete,
    Put,
    apply_event,
    matches_properties,
)
from streams.metrics import WorkerMetrics

__all__ = ["DeploymentApplier", "PartitionTables"]


class PartitionTables(Protocol):
    """The state and index of one partition, as the applier sees them."""

    def get(self, key: bytes) -> dict[str, Any] | None:
        """The stored deployment, or None."""

    def put(self, key: bytes, value: dict[str, Any]) -> None:
        """Store ``value`` (the same object as :meth:`get` returned re-writes it as is)."""

    def delete(self, key: bytes) -> None:
        """Remove the deployment (a tombstone, also when it is absent)."""

    def index_put(self, entry: bytes) -> None:
        """Add an index entry."""

    def index_delete(self, entry: bytes) -> None:
        """Remove an index entry."""

    def index_scan(self, prefix: bytes) -> Iterable[bytes]:
        """The index entries starting with ``prefix``, in key order."""


class DeploymentApplier:
    """Applies decoded events to a partition's tables, keeping its indexes in step."""

    def __init__(self, policy: GatingPolicy, metrics: WorkerMetrics) -> None:
        self.policy = policy
        self.metrics = metrics

    @staticmethod
    def _reindex(
        tables: PartitionTables,
        key: bytes,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        before, after = entries_of(key, old), entries_of(key, new)
        # Sorted: the changelog gets the same records in the same order on every replay.
        for entry in sorted(before - after) if before else ():
            tables.index_delete(entry)
        for entry in sorted(after - before) if after else ():
            tables.index_put(entry)

    def ensure_indexed(self, tables: PartitionTables, key: bytes) -> None:
        """Write every index entry of the stored deployment (after a crash that delivered
        its table write but not all of its index writes)."""
        for entry in sorted(entries_of(key, tables.get(key))):
            tables.index_put(entry)

    def apply(self, tables: PartitionTables, key: bytes | None, event: dict[str, Any]) -> str:
        """Apply one event; returns the outcome's name for metrics."""
        kind, payload = event["payload"]
        if kind == DELETED_BY_PROPERTIES:
            deleted = self._delete_by_properties(tables, event["tenant"], payload)
            self.metrics.deleted_by_properties.inc(deleted)
            return "delete_by_properties"
        if key is None:
            msg = f"{kind} without a key"
            raise AvroDecodeError(msg)
        stored = tables.get(key)
        outcome = apply_event(stored, event, self.policy)
        if isinstance(outcome, Put):
            tables.put(key, outcome.value)
            if outcome.value is not stored:
                self._reindex(tables, key, stored, outcome.value)
        elif isinstance(outcome, Delete):
            tables.delete(key)
            self._reindex(tables, key, stored, None)
        return type(outcome).__name__.lower()

    def _delete_by_properties(
        self, tables: PartitionTables, tenant: str, payload: dict[str, Any]
    ) -> int:
        properties: dict[str, str] = payload["properties"]
        usn = payload["updateSequenceNumber"]
        # Any one property narrows the candidates; every candidate is checked against all.
        name, value = min(properties.items())
        prefix = terms_prefix(tenant, IndexName.PROPERTY, (name, value))
        listed = list(tables.index_scan(prefix))
        deleted = 0
        for entry in listed:
            key = decode_entry_key(entry).deployment
            stored = tables.get(key)
            if stored is None:
                # Listed but absent: a crash delivered a delete's tombstone but not its
                # index removals. The stale entry goes.
                tables.index_delete(entry)
                continue
            if not matches_properties(stored, properties, usn):
                continue
            tables.delete(key)
            self._reindex(tables, key, stored, None)
            deleted += 1
        return deleted
