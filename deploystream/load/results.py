"""What a load run did: status counts, latency percentiles, client CPU, and their summaries."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from deploystream.load.generator import DeploymentGenerator

__all__ = ["LoadResult", "format_summary", "percentile"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered) / 100) - 1))
    return ordered[rank]


@dataclass
class LoadResult:
    """What one load run did and how long its requests took."""

    requests: int = 0
    items: int = 0
    ok_items: int = 0
    accepted: int = 0
    rejected: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def request_rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def item_rate(self) -> float:
        """Deployments (items) per second in requests answered 2xx."""
        return self.ok_items / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        """The ``q``-th latency percentile in milliseconds."""
        return percentile(self.latencies_s, q) * 1000

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest."""
        return {
            "requests": self.requests,
            "deployments": self.items,
            "okDeployments": self.ok_items,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "elapsedS": round(self.elapsed_s, 3),
            "requestsPerS": round(self.request_rate, 1),
            "deploymentsPerS": round(self.item_rate, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "latencyMs": {f"p{q:g}": round(self.latency_ms(q), 2) for q in (50, 90, 99, 99.9)}
            | {"max": round(max(self.latencies_s, default=float("nan")) * 1000, 2)},
            "clientCpuS": round(self.client_cpu_s, 2),
            "clientCpuPct": round(100 * self.client_cpu_s / self.elapsed_s, 1)
            if self.elapsed_s
            else 0.0,
        }


def format_summary(result: LoadResult, generator: DeploymentGenerator) -> str:
    """The run and the generated traffic as aligned text lines, for a terminal."""
    s = result.summary()
    latency = s["latencyMs"]
    statuses = ", ".join(f"{k}: {v}" for k, v in s["statuses"].items()) or "none"
    late = generator.late / generator.generated if generator.generated else 0.0
    return (
        f"requests      {s['requests']} in {s['elapsedS']:.1f}s = {s['requestsPerS']:.1f}/s\n"
        f"deployments   {s['deployments']} sent, {s['okDeployments']} in 2xx answers = "
        f"{s['deploymentsPerS']:.1f}/s (accepted {s['accepted']}, rejected {s['rejected']})\n"
        f"statuses      {statuses}\n"
        f"latency ms    p50 {latency['p50']:.1f}  p90 {latency['p90']:.1f}  "
        f"p99 {latency['p99']:.1f}  p99.9 {latency['p99.9']:.1f}  max {latency['max']:.1f}\n"
        f"generated     {generator.generated} deployments, {generator.created} distinct, "
        f"{100 * late:.1f}% out of order\n"
        f"client CPU    {s['clientCpuS']:.1f}s ({s['clientCpuPct']:.0f}% of one core)"
    )
