"""Prometheus metrics of one worker, on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["WorkerMetrics"]

#: Seconds, from a millisecond to a minute: a batch's stages and the apply lag.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


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
        self.batch_events = Histogram(
            "deploystream_worker_batch_events",
            "Input records per applied batch.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "deploystream_worker_batch_seconds",
            "Time of each stage of a batch: apply (in memory), deliver (until Kafka has "
            "acknowledged its changelog records), write (into RocksDB).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.apply_lag = Histogram(
            "deploystream_worker_apply_lag_seconds",
            "From each input record's timestamp (when the gateway produced it) to its batch "
            "being readable in the table (clocks of different hosts add their skew).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.partitions = Gauge(
            "deploystream_worker_table_partitions",
            "Table partitions this worker holds, by role: active (owns, serves lookups) or "
            "standby (warm copy of another worker's partition).",
            ["role", "partition"],
            registry=self.registry,
        )

    def watch_listings(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the listings queries and lookups read, as ``counts()`` gives them at each
        scrape: (kept, rendered). Counting on the read path would cost a labelled counter
        per listed deployment."""
        self.registry.register(_Listings(counts))

    def observe_assignment(self, actives: Iterable[int], standbys: Iterable[int]) -> None:
        """Replace the partition gauge with the current assignment."""
        self.partitions.clear()
        for role, partitions in (("active", actives), ("standby", standbys)):
            for partition in partitions:
                self.partitions.labels(role, str(partition)).set(1)


class _Listings(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        kept, rendered = self._counts()
        family = CounterMetricFamily(
            "deploystream_worker_listings",
            "Stored deployments listed by queries or looked up, by source: kept (the listing "
            "written beside the stored value), rendered (decoded and rendered: a value "
            "restored from the changelog or written by another version; the listing is "
            "written back).",
            labels=["source"],
        )
        family.add_metric(["kept"], kept)
        family.add_metric(["rendered"], rendered)
        yield family
