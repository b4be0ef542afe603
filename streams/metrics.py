"""Prometheus metrics of one worker, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

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
            "Records on the deployments topic that could not be decoded.",
            registry=self.registry,
        )
        self.lookups = Counter(
            "deploystream_worker_lookups",
            "Lookups served from the local table, by result (found, missing).",
            ["result"],
            registry=self.registry,
        )
