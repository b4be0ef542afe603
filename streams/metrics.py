"""Prometheus metrics of one worker, on a registry of its own."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """What the worker exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.applied = Counter(
            "deploystream_worker_events",
            "DeploymentEvents applied, by outcome (put, delete, keep).",
            ["outcome"],
            registry=self.registry,
        )
        self.poison = Counter(
            "deploystream_worker_poison_records",
            "Records that could not be decoded or applied (copied to the dead-letter topic).",
            registry=self.registry,
        )
        self.lookups = Counter(
            "deploystream_worker_lookups",
            "Keys looked up, by result: found, missing (served from the local table), "
            "forwarded (to the worker that owns the key), unavailable (asked again later: "
            "rebalance, recovery, owner unreachable), unauthorized.",
            ["result"],
            registry=self.registry,
        )
        self.queries = Counter(
            "deploystream_worker_queries",
            "Index queries by result: answered, invalid (400), unauthorized (401: no internal "
            "secret), unavailable (503: rebalance, recovery or index rebuild).",
            ["result"],
            registry=self.registry,
        )
        self.deleted_by_properties = Counter(
            "deploystream_worker_deleted_by_properties",
            "Deployments removed by delete-by-properties commands.",
            registry=self.registry,
        )
        self.partitions = Gauge(
            "deploystream_worker_table_partitions",
            "Table partitions this worker holds, by role: active (owns, serves lookups) or "
            "standby (warm copy of another worker's partition).",
            ["role", "partition"],
            registry=self.registry,
        )

    def observe_assignment(self, actives: Iterable[int], standbys: Iterable[int]) -> None:
        """Replace the partition gauge with the current assignment."""
        self.partitions.clear()
        for role, partitions in (("active", actives), ("standby", standbys)):
            for partition in partitions:
                self.partitions.labels(role, str(partition)).set(1)
