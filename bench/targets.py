"""The benchmark's targets: reported goals, each a figure of the results and a limit."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TARGETS", "Target", "evaluate", "percent"]


def _get(results: dict[str, Any], path: str) -> Any:
    value: Any = results
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class Target:
    """One reported (not asserted) goal: ``value`` at ``path`` compared with ``limit``."""

    name: str
    path: str
    limit: float
    at_least: bool
    unit: str
    render: Callable[[float], str]

    def check(self, results: dict[str, Any]) -> dict[str, Any]:
        """The figure, the target and pass/miss."""
        value = _get(results, self.path)
        ok: bool | None = None
        if isinstance(value, int | float) and not math.isnan(value):
            ok = value >= self.limit if self.at_least else value <= self.limit
        sign = "≥" if self.at_least else "≤"
        return {
            "name": self.name,
            "value": value,
            "shown": self.render(value) if isinstance(value, int | float) else "not measured",
            "target": f"{sign} {self.render(self.limit)}",
            "result": "pass" if ok else ("miss" if ok is False else "n/a"),
        }


def percent(value: float) -> str:
    """A ratio as a percentage, one decimal."""
    return f"{100 * value:.1f}%"


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _mb(value: float) -> str:
    return f"{value:.0f} MB"


TARGETS = (
    Target(
        "Gateway ingest (bulk 100) ÷ bare producer",
        "ingest.baseline.ratio",
        0.30,
        at_least=True,
        unit="ratio",
        render=percent,
    ),
    Target(
        "Worker apply ÷ bare consumer (+ Avro decode)",
        "apply.ratio",
        0.20,
        at_least=True,
        unit="ratio",
        render=percent,
    ),
    Target(
        "Visibility lag p99 at half load, worst of the repeats",
        "visibility.atHalf.worstP99Ms",
        150.0,
        at_least=False,
        unit="ms",
        render=_ms,
    ),
    Target(
        "Visibility lag p99 at 80% of sustainable load, worst of the repeats",
        "visibility.at80.worstP99Ms",
        500.0,
        at_least=False,
        unit="ms",
        render=_ms,
    ),
    Target("Lookup p99, 64 clients", "lookup.p99Ms", 25.0, at_least=False, unit="ms", render=_ms),
    *(
        Target(
            f"Query p99, 16 clients: {label}",
            f"queries.{name}.p99Ms",
            50.0,
            at_least=False,
            unit="ms",
            render=_ms,
        )
        for name, label in (
            ("issue", "deployments of an issue"),
            ("pipelines", "pipelines"),
            ("environments", "latest per environment"),
            ("history", "an environment's deployments"),
        )
    ),
    Target(
        "Worker serving again after SIGKILL (RocksDB kept)",
        "restart.kill.servingS",
        10.0,
        at_least=False,
        unit="s",
        render=lambda value: f"{value:.1f} s",
    ),
    Target(
        "Worker peak RSS with the restart table",
        "restart.workerPeakRssMb",
        512.0,
        at_least=False,
        unit="MB",
        render=_mb,
    ),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target checked against ``results``."""
    return [t.check(results) for t in TARGETS]
