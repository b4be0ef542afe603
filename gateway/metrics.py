"""Prometheus metrics of one gateway, on a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    """Counters and histograms the gateway exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "deploystream_gateway_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.deployments = Counter(
            "deploystream_gateway_deployments",
            "Submitted deployments by outcome (accepted, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "deploystream_gateway_produce_seconds",
            "Time from produce to the broker's acknowledgement of a request's events.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.connections = Gauge(
            "deploystream_gateway_connections",
            "Open client connections.",
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "deploystream_gateway_connections_refused",
            "Connections answered 503 and closed because DEPLOYSTREAM_MAX_CONNECTIONS were open.",
            registry=self.registry,
        )
        self.clients_reloads = Counter(
            "deploystream_gateway_clients_reloads",
            "Reloads of the clients file by outcome (loaded, invalid).",
            ["outcome"],
            registry=self.registry,
        )
        self.kafka_unavailable = Counter(
            "deploystream_gateway_kafka_unavailable",
            "Requests answered 503 because Kafka did not acknowledge in time.",
            registry=self.registry,
        )
