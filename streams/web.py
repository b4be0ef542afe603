"""Health, readiness and metrics pages of the worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import WorkerMetrics

__all__ = ["is_ready", "register_health"]


def is_ready(app: faust.App) -> bool:
    """Tables recovered once and no rebalance or recovery under way."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # concrete TableManager
    recovered = recovery.completed.is_set()
    return bool(recovered and not app.in_recovery and not app.rebalancing)


def _partitions_of(tps: Any, topic: str) -> list[int]:
    return sorted(tp.partition for tp in tps if tp.topic == topic)


def register_health(
    app: faust.App, table: Any, metrics: WorkerMetrics, busy: Callable[[], bool]
) -> None:
    """Mount ``/healthz``, ``/readyz`` and ``/metrics``; ``busy``: work that makes the worker
    not ready besides faust's (an index rebuild)."""

    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(b'{"status":"ok"}', content_type="application/json")

    class Readyz(View):
        async def get(self, request: Request) -> Response:
            ready = is_ready(app) and not busy()
            body = {"status": "ready" if ready else "not ready"}
            return self.bytes(
                orjson.dumps(body), content_type="application/json", status=200 if ready else 503
            )

    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # Read at scrape time: faust changes the assignment on every rebalance.
            topic = table.changelog_topic_name
            metrics.observe_assignment(
                _partitions_of(app.assignor.assigned_actives(), topic),
                _partitions_of(app.assignor.assigned_standbys(), topic),
            )
            # aiohttp refuses a charset inside content_type=, so the header is set whole.
            return self.bytes(
                generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

    app.page("/healthz")(Healthz)
    app.page("/readyz")(Readyz)
    app.page("/metrics")(Metrics)
